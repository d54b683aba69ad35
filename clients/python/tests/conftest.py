"""A real montrose-hub for the tests: started once per session on free ports (--port 0,
--bridge-port 0; the ports are read from its "listening on" lines) with a temporary data
folder, known secrets and a webhook pointed at an HTTP server inside the test process;
stopped by its PID (SIGTERM, then SIGKILL after 10 s).

MONTROSE_HUB_BIN names the executable (default: the repository's .build/release/montrose-hub,
else .build/debug/montrose-hub)."""
from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))

JWT_SECRET = "client-tests-jwt-secret-0123456789"
BRIDGE_KEY = "client-tests-bridge-key-0123456789"
WEBHOOK_SECRET = "client-tests-webhook-secret-0123456789"
FILES_ORIGIN = "https://files.example.com"


def hub_binary() -> str:
    given = os.environ.get("MONTROSE_HUB_BIN")
    if given:
        return os.path.abspath(given)
    for flavour in ("release", "debug"):
        path = os.path.join(REPO, ".build", flavour, "montrose-hub")
        if os.access(path, os.X_OK):
            return path
    raise RuntimeError("no montrose-hub binary: build it (swift build -c release) or set MONTROSE_HUB_BIN")


class WebhookReceiver:
    """An HTTP server that records every POST (headers and raw body) and answers 200."""

    def __init__(self) -> None:
        self.received: List[Tuple[Dict[str, str], bytes]] = []
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver.cond:
                    receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    receiver.cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, predicate, timeout: float = 15.0) -> Tuple[Dict[str, str], bytes]:
        """The first request whose decoded body satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for headers, body in self.received:
                    try:
                        if predicate(json.loads(body)):
                            return headers, body
                    except ValueError:
                        continue
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching webhook within {timeout} s; got {len(self.received)} requests")
                self.cond.wait(left)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class HubProcess:
    def __init__(self, binary: str, webhook_url: str) -> None:
        self.dir = tempfile.mkdtemp(prefix="montrose-client-tests-")
        self.log_path = os.path.join(self.dir, "hub.log")
        self.out_path = os.path.join(self.dir, "hub.out")
        args = [binary, "--host", "127.0.0.1", "--port", "0", "--bridge-host", "127.0.0.1", "--bridge-port", "0",
                "--data", os.path.join(self.dir, "data"), "--jwt-secret", JWT_SECRET, "--bridge-key", BRIDGE_KEY,
                "--no-dev", "--loops", "1", "--log-level", "error", "--attachment-origin", FILES_ORIGIN,
                "--webhook", webhook_url, "--webhook-secret", WEBHOOK_SECRET]
        self.out = open(self.out_path, "wb")
        self.err = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self.out, stderr=self.err, stdin=subprocess.DEVNULL)
        self.public_port, self.bridge_port = self._ports()

    def _ports(self) -> Tuple[int, int]:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            text = open(self.out_path, encoding="utf-8", errors="replace").read()
            public = re.search(r"public listening on http://[0-9.]+:(\d+)", text)
            bridge = re.search(r"bridge listening on http://[0-9.]+:(\d+)", text)
            if public and bridge:
                return int(public.group(1)), int(bridge.group(1))
            if self.proc.poll() is not None:
                raise RuntimeError("the hub exited at start: " + open(self.log_path, errors="replace").read())
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("the hub printed no listening lines within 20 s")

    @property
    def bridge_url(self) -> str:
        return f"http://127.0.0.1:{self.bridge_port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.out.close()
        self.err.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def webhooks() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="session")
def hub_process(webhooks: WebhookReceiver) -> Iterator[HubProcess]:
    process = HubProcess(hub_binary(), f"http://127.0.0.1:{webhooks.port}/hooks/montrose")
    yield process
    process.stop()


@pytest.fixture()
def hub(hub_process: HubProcess):
    from montrose_hub import Hub
    return Hub(hub_process.bridge_url, BRIDGE_KEY, timeout=5, retries=2)


def unique(prefix: str) -> str:
    """A fresh user id, so tests sharing the session's hub never see each other's data."""
    return f"{prefix}-{secrets.token_hex(4)}"


# MARK: a tiny WebSocket client (RFC 6455, text frames only), for the token and edit tests

class WebSocket:
    def __init__(self, port: int, path: str = "/ws", timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError("upgrade refused: " + head.decode(errors="replace"))
        self.next_id = 1

    def _exact(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed")
            out += chunk
        return out

    def send_json(self, obj: Dict[str, Any]) -> None:
        payload = json.dumps(obj).encode()
        mask = secrets.token_bytes(4)
        n = len(payload)
        header = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def recv_json(self) -> Optional[Dict[str, Any]]:
        """The next text frame as JSON; None for a close frame."""
        b0, b1 = self._exact(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._exact(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._exact(8))[0]
        payload = self._exact(n)
        if b0 & 0x0F == 0x8:
            return None
        return json.loads(payload)

    def call(self, op: str, **params: Any) -> Dict[str, Any]:
        """Sends an op and returns its reply (pushes met on the way are skipped)."""
        rid = self.next_id
        self.next_id += 1
        self.send_json({"id": rid, "op": op, **params})
        while True:
            frame = self.recv_json()
            if frame is None:
                raise ConnectionError("closed while waiting for the reply")
            if frame.get("id") == rid and "ok" in frame:
                return frame

    def close(self) -> None:
        self.sock.close()
