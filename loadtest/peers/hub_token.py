#!/usr/bin/env python3
"""Prints an HS256 hub token (docs/protocol.md "Identity and tokens"), standard library only.
   python3 loadtest/peers/hub_token.py (--data DIR | --secret S) [--sub f0] [--role client] [--ttl 3600]
The secret is --secret, or the jwt_secret= line of DIR/dev-secrets (written by a development-mode
hub on its first start)."""
import argparse, base64, hashlib, hmac, json, os, sys, time

def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

def token(secret: str, sub: str, role: str, name: str, ttl: int) -> str:
    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {"sub": sub, "role": role, "name": name, "iat": now, "exp": now + ttl}
    signing_input = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + \
        b64url(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(sig)

def secret_from(data_dir: str) -> str:
    path = os.path.join(data_dir, "dev-secrets")
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("jwt_secret="):
                return line[len("jwt_secret="):].strip()
    sys.exit(f"hub_token.py: no jwt_secret= line in {path}")

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--data")
    src.add_argument("--secret")
    ap.add_argument("--sub", default="f0")
    ap.add_argument("--role", default="client")
    ap.add_argument("--name", default=None)
    ap.add_argument("--ttl", type=int, default=3600)
    a = ap.parse_args()
    print(token(a.secret or secret_from(a.data), a.sub, a.role, a.name or f"Bench {a.sub}", a.ttl))
