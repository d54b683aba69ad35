#!/usr/bin/env python3
"""Writes the seed corpus in fuzz/corpus/<target>/ (deterministic; the files are committed).

Run from anywhere: python3 fuzz/make_corpus.py. Existing seeds with the same names are
overwritten; other files in the corpus folders (regression inputs) are left alone.

The JWT seeds are signed with the fuzz target's fixed secret (fuzz/targets/jwt.swift).
"""
import hashlib
import hmac
import base64
import json
import os
import struct
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
JWT_SECRET = b"montrose-fuzz-secret-0123456789abcdef"


def write(target, name, data):
    folder = os.path.join(ROOT, target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- frames

def frame(opcode, payload, fin=True, rsv1=False, key=b"\x37\xfa\x21\x3d", masked=True, form=None):
    """A client frame (RFC 6455 §5.2), masked with `key` unless masked=False."""
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    mask_bit = 0x80 if masked else 0
    form = form or ("7" if n < 126 else ("16" if n <= 0xFFFF else "64"))
    if form == "7":
        head = bytes([b0, mask_bit | n])
    elif form == "16":
        head = bytes([b0, mask_bit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, mask_bit | 127]) + struct.pack(">Q", n)
    if not masked:
        return head + payload
    body = bytes(b ^ key[i & 3] for i, b in enumerate(payload))
    return head + key + body


def close_payload(code, reason=b""):
    return struct.pack(">H", code) + reason


def deflate_message(data, compressor=None, final=False):
    """permessage-deflate payload: raw deflate, sync flush, trailing 00 00 FF FF removed."""
    c = compressor or zlib.compressobj(6, zlib.DEFLATED, -15)
    out = c.compress(data)
    if final:
        return out + c.flush(zlib.Z_FINISH)  # a BFINAL block: the reader must start a new stream
    out += c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def frames_seeds():
    t = "frames"
    write(t, "text-hello", frame(0x1, b"Hello"))
    write(t, "binary", frame(0x2, bytes(range(40))))
    write(t, "zero-mask-key", frame(0x1, b"plain text under a zero key", key=b"\0\0\0\0"))
    write(t, "envelope", frame(0x1, json.dumps({"id": 7, "op": "send", "channel": "general",
                                                  "body": "hi"}).encode()))
    # Fragmented text with a ping between fragments and a code point cut across fragments.
    text = "café ☕ ok".encode()
    write(t, "fragmented-with-ping",
          frame(0x1, text[:4], fin=False) + frame(0x9, b"ping!") + frame(0x0, text[4:8], fin=False)
          + frame(0x0, text[8:]))
    write(t, "ping-pong", frame(0x9, b"") + frame(0xA, b"pong-data"))
    write(t, "close-1000", frame(0x1, b"bye") + frame(0x8, close_payload(1000, b"normal closure")))
    write(t, "close-empty", frame(0x8, b""))
    write(t, "len16", frame(0x2, bytes((i * 7) & 0xFF for i in range(300))))
    write(t, "len64-form", frame(0x1, b"sixty-four bit length", form="64"))
    write(t, "many-small", b"".join(frame(0x1, str(i).encode()) for i in range(12)))
    write(t, "empty-fragments", frame(0x2, b"", fin=False) + frame(0x0, b"", fin=False) + frame(0x0, b"x"))
    # Rejections worth starting from: unmasked, reserved opcode, fragmented control.
    write(t, "unmasked", frame(0x1, b"no mask", masked=False))
    write(t, "reserved-opcode", frame(0x3, b"?"))
    write(t, "too-big", frame(0x2, bytes(1001)))


def frames_deflate_seeds():
    t = "frames_deflate"

    def seed(name, data, context_takeover):
        # The target picks the mode from the length: odd = no context takeover.
        if (len(data) % 2 == 1) == context_takeover:
            data += b"\x00"  # one byte of a next frame header: incomplete, changes nothing
        write(t, name, data)

    seed("deflated-text", frame(0x1, deflate_message(b"Hello, hello, hello, hello!"), rsv1=True), False)
    seed("deflated-zero-key", frame(0x1, deflate_message(b"abcabcabcabcabc"), rsv1=True, key=b"\0\0\0\0"), False)
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    m1 = deflate_message(b'{"id":1,"op":"ping"}', c)
    m2 = deflate_message(b'{"id":2,"op":"ping"}', c)  # back-references into message 1
    seed("context-takeover", frame(0x1, m1, rsv1=True) + frame(0x1, m2, rsv1=True), True)
    payload = deflate_message(b"fragmented compressed message " * 3)
    seed("deflated-fragmented",
         frame(0x1, payload[:5], fin=False, rsv1=True) + frame(0x9, b"p")
         + frame(0x0, payload[5:]), False)
    seed("mixed", frame(0x2, b"not compressed") + frame(0x2, deflate_message(bytes(range(64))), rsv1=True), False)
    seed("bfinal", frame(0x1, deflate_message(b"ends its deflate stream", final=True), rsv1=True), False)
    seed("empty-message", frame(0x1, b"\x00", rsv1=True), False)
    seed("bomb", frame(0x2, deflate_message(bytes(100_000)), rsv1=True), False)
    seed("corrupt", frame(0x1, b"\xff\xff\xff\xff\x00", rsv1=True), False)
    seed("close", frame(0x1, deflate_message(b"x"), rsv1=True) + frame(0x8, close_payload(1001)), False)


# ---------------------------------------------------------------- http

def http_seeds():
    t = "http"
    write(t, "get", "GET /health HTTP/1.1\r\nHost: hub.example\r\nUser-Agent: fuzz\r\n\r\n")
    write(t, "get-query", "GET /api/v1/history?channel=general&limit=50&q=caf%C3%A9+bar HTTP/1.1\r\n"
                          "Host: hub.example\r\nAccept: application/json\r\n\r\n")
    body = json.dumps({"user": "alice", "title": "Hello", "body": "World"})
    write(t, "post-content-length", "POST /api/v1/notify HTTP/1.1\r\nHost: hub.example\r\n"
          "Content-Type: application/json\r\nAuthorization: Bearer abc.def.ghi\r\n"
          f"Content-Length: {len(body)}\r\n\r\n{body}")
    write(t, "pipelined", "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
          "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
          "GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    write(t, "chunked", "POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
          "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: yes\r\n\r\n")
    write(t, "chunked-pipelined", "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
          "a\r\n0123456789\r\n0\r\n\r\nGET /after HTTP/1.1\r\nHost: h\r\n\r\n")
    write(t, "expect-continue", "PUT /api/v1/x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
          "Content-Length: 10\r\n\r\n0123")
    write(t, "upgrade", "GET /ws HTTP/1.1\r\nHost: hub.example\r\nUpgrade: websocket\r\n"
          "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
          "Sec-WebSocket-Version: 13\r\nOrigin: https://example.com\r\n"
          "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits; server_max_window_bits=10, "
          "permessage-deflate\r\n\r\n")
    write(t, "upgrade-then-frames",
          b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\nSec-WebSocket-Version: 13\r\n"
          b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
          b"client_no_context_takeover; client_max_window_bits=\"12\"\r\n\r\n"
          + frame(0x1, b'{"id":1,"op":"auth","token":"x"}'))
    write(t, "http10-keepalive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n")
    write(t, "bare-lf", "GET /lf HTTP/1.1\nHost: h\nContent-Length: 2\n\nok")
    write(t, "leading-crlf", "\r\n\r\nOPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")
    write(t, "duplicate-content-length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n"
          "Content-Length: 3\r\n\r\nabc")
    write(t, "bad-version", "GET / HTTP/2.0\r\nHost: h\r\n\r\n")
    write(t, "te-and-cl", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
          "Content-Length: 4\r\n\r\n0\r\n\r\n")
    # Request-target forms (RFC 9112 §3.2): absolute (served by its path; its authority is the
    # Host), authority (CONNECT) and asterisk (OPTIONS *), both refused.
    write(t, "absolute-form", "GET HTTP://127.0.0.1:8081/v1/stats?limit=5 HTTP/1.1\r\nHost: other\r\n\r\n"
          "GET https://[::1]:8443 HTTP/1.0\r\n\r\n")
    write(t, "absolute-form-upgrade", "GET http://hub.example/ws?token=a.b.c HTTP/1.1\r\nUpgrade: websocket\r\n"
          "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    write(t, "absolute-form-userinfo", "GET http://user:pw@127.0.0.1/healthz HTTP/1.1\r\nHost: h\r\n\r\n")
    write(t, "connect", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
    write(t, "options-asterisk", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")


# ---------------------------------------------------------------- json

def json_seeds():
    t = "json"
    write(t, "auth", '{"id":1,"op":"auth","token":"eyJhbGciOiJIUzI1NiJ9.e30.sig"}')
    write(t, "send", '{"id": 2, "op": "send", "channel": "general", '
                     '"body": "h\\u00e9llo \\ud83d\\ude00 \\"quoted\\" \\\\ \\/ \\b\\f\\n\\r\\t \\u2028"}')
    write(t, "history", '{"id":3,"op":"history","channel":"support.alice","before":1750000000.5,"limit":50}')
    write(t, "numbers", '[0,-0,1,-1,1.5,-1e-7,1E+300,2.5e-308,9007199254740993,9223372036854775807,'
                        '-9223372036854775808,18446744073709551616,0.1,123456789012345678901234567890]')
    write(t, "number-overflow", '[1e400]')
    write(t, "nested", '{"a":[{"b":[[],{}]},[[[["deep"]]]]],"c":{"d":{"e":{"f":null}}}}')
    write(t, "literals", ' [true, false, null] \n\t\r')
    write(t, "unicode", '{"é":"e\u0301","日本":"語","emoji":"\U0001F600","nul":"\\u0000"}'.encode())
    write(t, "many-keys", "{" + ",".join(f'"k{i}":{i}' for i in range(20)) + "}")
    write(t, "scalar-string", '"just a string"')
    write(t, "duplicate-key", '{"a":1,"a":2}')
    write(t, "trailing-comma", '[1,2,]')
    write(t, "too-deep", "[" * 17 + "]" * 17)


# ---------------------------------------------------------------- jwt

def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(claims, header=None, secret=JWT_SECRET):
    h = header if header is not None else {"alg": "HS256", "typ": "JWT"}
    hb = h if isinstance(h, bytes) else json.dumps(h, separators=(",", ":")).encode()
    pb = claims if isinstance(claims, bytes) else json.dumps(claims, separators=(",", ":")).encode()
    signing_input = b64url(hb) + "." + b64url(pb)
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(sig)


def jwt_seeds():
    t = "jwt"
    agent = {"sub": "agent.web-1", "role": "website_agent", "name": "Wendy Web",
             "exp": 1_760_000_000, "iat": 1_749_999_000, "services": ["website", "support"]}
    client = {"sub": "alice@example.com", "role": "client", "name": "Alice Ω", "exp": 1_760_000_000}
    # Whole tokens (used as tokens, and as claims text).
    write(t, "token-agent", jwt(agent))
    write(t, "token-client", jwt(client))
    write(t, "token-expired", jwt(dict(client, exp=1_700_000_000)))
    write(t, "token-bad-signature", jwt(client, secret=b"another secret"))
    write(t, "token-alg-none", b64url(b'{"alg":"none"}') + "." + b64url(json.dumps(client).encode()) + ".")
    write(t, "token-padded", jwt(client) + "==")
    # Claims JSON: the target signs it under the standard header.
    write(t, "claims-admin", json.dumps({"sub": "root", "role": "admin", "name": "Admin", "exp": 1.76e9}))
    write(t, "claims-marketing", json.dumps({"sub": "m_1", "role": "marketing_agent", "name": "Mia",
                                             "exp": 9223372036854775807, "iat": -5,
                                             "services": ["marketing", "courses"], "extra": {"x": [1]}}))
    write(t, "claims-bad-services", json.dumps({"sub": "c", "role": "client", "name": "C", "exp": 1760000000,
                                                "services": ["support", "support"]}))
    write(t, "claims-control-name", '{"sub":"c","role":"client","name":"a\\u0007b","exp":1760000000}')
    # Header NUL claims: the target signs both.
    write(t, "header-typ", b'{"alg":"HS256","typ":"JWT","kid":"k1"}\x00'
          + json.dumps(client).encode())
    write(t, "header-crit", b'{"alg":"HS256","crit":["exp"]}\x00' + json.dumps(client).encode())
    write(t, "header-alg-array", b'{"alg":["HS256"]}\x00{"sub":"x","role":"client","name":"X","exp":1760000000}')


if __name__ == "__main__":
    frames_seeds()
    frames_deflate_seeds()
    http_seeds()
    json_seeds()
    jwt_seeds()
    for target in sorted(os.listdir(ROOT)):
        print(f"{target}: {len(os.listdir(os.path.join(ROOT, target)))} seeds")
