#!/usr/bin/env python3
"""Probe a jangteo binary for the holes of the security round (issue 27).

Starts the given binary on the embedded engine (a temporary data directory,
127.0.0.1, a free port), tries each abuse the outside probe found, and
prints one line per class: what the server did. Run it against an old and a
new build to show which holes are closed:

    scripts/abuse-probe.py target/debug/jangteo
    scripts/abuse-probe.py /tmp/old/target/debug/jangteo

Bounded: a few hundred requests to 127.0.0.1, one server, stops by itself.
Standard library only.
"""

import base64
import glob
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from email import message_from_binary_file


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    def __init__(self, binary):
        self.dir = tempfile.mkdtemp(prefix="jt-probe-")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.update({
            "JANGTEO_LISTEN": f"127.0.0.1:{self.port}",
            "JANGTEO_DATA_DIR": f"{self.dir}/data",
            "JANGTEO_LOG": "warn",
            "JANGTEO_ARGON2_MEMORY_KIB": "64",
            "JANGTEO_ARGON2_ITERATIONS": "1",
            "JANGTEO_SIGNUP_MAX_PER_ADDRESS": "100000",
            "JANGTEO_LOGIN_MAX_FAILURES": "100000",
            # Toss switched on against a port nobody answers: webhooks are
            # taken, provider calls fail.
            "JANGTEO_TOSS_SECRET_KEY": "test_sk_probe",
            "JANGTEO_TOSS_BASE_URL": "http://127.0.0.1:9",
        })
        self.binary = binary
        self.env = env
        self.log = open(f"{self.dir}/server.log", "wb")
        self.proc = subprocess.Popen([binary, "serve"], env=env, stdout=self.log, stderr=self.log)
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{self.base}/health", timeout=1)
                return
            except Exception:
                time.sleep(0.1)
        raise SystemExit("the server did not start")

    def admin(self):
        subprocess.run(
            [self.binary, "create-admin", "--email", "probe-admin@example.com", "--nickname", "probeadmin",
             "--password", "admin-password-1", "--data-dir", f"{self.dir}/data", "--log", "warn"],
            env=self.env, check=True, capture_output=True)
        return self.login("probe-admin@example.com", "admin-password-1")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def req(self, method, path, body=None, token=None, headers=None, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        h = {"content-type": "application/json"} if body is not None else {}
        if token:
            h["authorization"] = f"Bearer {token}"
        h.update(headers or {})
        r = urllib.request.Request(self.base + path, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(r, timeout=30) as resp:
                text = resp.read()
                return resp.status, resp.headers, text
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()
        except (ConnectionError, urllib.error.URLError):
            # The server dropped the connection (a panic in its handler).
            return 0, {}, b""

    def json(self, *a, **k):
        status, _, text = self.req(*a, **k)
        try:
            return status, json.loads(text or b"null")
        except ValueError:
            return status, None

    def login(self, email, password):
        return self.json("POST", "/api/auth/login", {"email": email, "password": password})[1]["token"]

    def user(self, name):
        email = f"{name}@example.com"
        self.json("POST", "/api/auth/signup", {"email": email, "password": "password-123", "nickname": name})
        token = self.login(email, "password-123")
        self.verify(email)
        return token

    def verify(self, email):
        """Follow the mailed link where the build has one (written as .eml)."""
        for _ in range(50):
            for path in glob.glob(f"{self.dir}/data/outbox-mail/verify-*.eml"):
                msg = message_from_binary_file(open(path, "rb"))
                if email not in str(msg["To"]):
                    continue
                for part in msg.walk():
                    if part.get_content_type() == "text/plain":
                        m = re.search(r"token=([A-Za-z0-9_-]+)", part.get_payload(decode=True).decode())
                        if m:
                            self.json("POST", "/api/auth/verify-email", {"token": m.group(1)})
                            return True
            status, _ = self.json("POST", "/api/auth/verify-email", {"token": "x"})
            if status == 404:
                return False  # an older build: nothing to verify
            time.sleep(0.1)
        return False


def parallel(n, fn):
    out = [None] * n
    def run(i):
        out[i] = fn(i)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def png(seed):
    """A tiny valid PNG, different per seed."""
    import struct
    import zlib
    raw = b"".join(b"\x00" + bytes([(seed + x + y) % 256 for x in range(3) for _ in range(3)]) for y in range(3))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 3, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    s = Server(sys.argv[1])
    results = []
    def report(finding, what):
        results.append((finding, what))
        print(f"{finding:>3}  {what}", flush=True)
    try:
        admin = s.admin()
        alice = s.user("alice")

        # 1. Metric label sets from made-up methods.
        before = s.req("GET", "/metrics")[2].decode().count("jangteo_http_requests_total{")
        rnd = random.Random(27)
        for i in range(300):
            s.req("".join(rnd.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(8)) + str(i), "/x")
        after = s.req("GET", "/metrics")[2].decode().count("jangteo_http_requests_total{")
        report(1, f"300 made-up methods: http_requests_total series {before} -> {after}")

        # 2. (email verification) Sign-up answer for a registered address.
        status, body = s.json("POST", "/api/auth/signup",
                              {"email": "alice@example.com", "password": "password-999", "nickname": "mallory"})
        report(2, f"sign-up with a registered address: {status} {body and body.get('code')}")

        # 3. SSE streams per user.
        opened = []
        def stream(_):
            try:
                r = urllib.request.urlopen(urllib.request.Request(
                    s.base + "/api/notifications/stream", headers={"authorization": f"Bearer {alice}"}), timeout=5)
                opened.append(r)
                return r.status
            except urllib.error.HTTPError as e:
                return e.code
            except Exception:
                return 0
        codes = parallel(30, stream)
        report(3, f"30 notification streams by one user: {codes.count(200)} opened, {codes.count(429)} refused (429)")
        for r in opened:
            r.close()

        # 4. Hoarding: unpaid orders by one buyer.
        _, product = s.json("POST", "/api/admin/products", {
            "name": "Probe", "brand": "P", "category": "bags", "base_price": 1000, "status": "on_sale",
            "options": [{"label": "a", "sku": "PR-A", "stock": 1000},
                        {"label": "free", "sku": "PR-F", "stock": 100, "price_delta": -1000}]}, token=admin)
        opt, free = product["options"][0]["id"], product["options"][1]["id"]
        placed = [s.json("POST", "/api/orders", {"from": "buy_now", "option_id": opt, "quantity": 1},
                         token=alice)[0] for _ in range(12)]
        report(4, f"12 unpaid orders by one buyer: {placed.count(201)} placed, refused {sorted(set(placed) - {201})}")

        # 5. Forged webhooks.
        for i in range(300):
            s.json("POST", "/api/payments/webhooks/toss",
                   {"eventType": "PAYMENT_STATUS_CHANGED", "createdAt": str(i),
                    "data": {"paymentKey": f"forged-{i}", "status": "DONE"}})
        _, jobs = s.json("GET", "/api/admin/outbox?status=pending&limit=200", token=admin)
        rec = [j for j in (jobs or []) if j.get("kind") == "payment_reconcile"]
        _, done = s.json("GET", "/api/admin/outbox?status=done&limit=200", token=admin)
        rec += [j for j in (done or []) if j.get("kind") == "payment_reconcile"]
        _, dead = s.json("GET", "/api/admin/outbox?status=dead&limit=200", token=admin)
        rec += [j for j in (dead or []) if j.get("kind") == "payment_reconcile"]
        more = "+" if len(rec) >= 200 else ""  # the admin list shows 200 per state
        report(5, f"300 forged Toss webhooks: {len(rec)}{more} reconcile jobs written")

        # 6. Uploads.
        made = 0
        for i in range(70):
            status, _, _ = s.req("POST", "/api/media", token=alice, raw=multipart(png(i)),
                                 headers={"content-type": "multipart/form-data; boundary=probeboundary"})
            made += status == 201
        report(6, f"70 uploads in a row: {made} stored")

        # 7. covered by the tests (emails to unverified addresses).
        # 8. Listing spam.
        created = sum(s.json("POST", "/api/listings", {"title": f"아이폰 {i}", "description": "", "price": 1000,
                                                      "category": "digital"}, token=alice)[0] == 201 for i in range(30))
        report(8, f"30 listings in a row: {created} created")

        # 9. A 0-won line cancelled after payment.
        bob = s.user("bob")
        s.json("POST", "/api/cart/items", {"option_id": opt, "quantity": 1}, token=bob)
        s.json("POST", "/api/cart/items", {"option_id": free, "quantity": 1}, token=bob)
        _, order = s.json("POST", "/api/orders", {"from": "cart"}, token=bob)
        s.json("POST", "/api/payments/confirm", {"order_number": order["order_number"], "payment_key": "probe-1",
                                                 "amount": order["total"], "provider": "sandbox"}, token=bob)
        line = [l for l in order["lines"] if l["unit_price"] == 0][0]["line_id"]
        status, _ = s.json("POST", f"/api/orders/{order['order_number']}/cancel",
                           {"lines": [{"line_id": line, "quantity": 1}]}, token=bob)
        report(9, f"cancel of a paid 0-won line: {status}")

        # 10. Cookie-authenticated change from another site; WebSocket origin.
        status, _, _ = s.req("POST", "/api/cart/items", {"option_id": opt, "quantity": 1},
                             headers={"cookie": f"jangteo_session={bob}", "origin": "https://evil.example"})
        ws_status = ws_upgrade(s.port, bob, "https://evil.example")
        report(10, f"cookie POST from https://evil.example: {status}; /ws upgrade from it: {ws_status}")

        # 11. Count-then-insert races.
        saved = parallel(60, lambda i: s.json("POST", "/api/me/keywords", {"keyword": f"키워드{i:02}"}, token=bob)[0])
        _, kw = s.json("GET", "/api/me/keywords", token=bob)
        report(11, f"60 parallel keyword saves (limit 30): {len(kw['items'])} stored")

        # 12. Cart lines.
        _, many = s.json("POST", "/api/admin/products", {
            "name": "Many", "brand": "M", "category": "bags", "base_price": 10, "status": "on_sale",
            "options": [{"label": f"o{i}", "sku": f"MANY-{i}", "stock": 5} for i in range(70)]}, token=admin)
        carol = s.user("carol")
        for o in many["options"]:
            s.json("POST", "/api/cart/items", {"option_id": o["id"], "quantity": 1}, token=carol)
        _, cart = s.json("GET", "/api/cart", token=carol)
        report(12, f"70 cart lines added: {len(cart['lines'])} in the cart")

        # 13. Nicknames.
        names = {n: s.json("POST", "/api/auth/signup", {"email": f"n{i}@example.com", "password": "password-123",
                                                        "nickname": n})[0]
                 for i, n in enumerate(["관리자", "abc\u202edef", "zero\u200bwidth"])}
        report(13, "nicknames: " + ", ".join(f"{n!r} {c}" for n, c in names.items()))

        # 14. Enumeration (see 2), Swagger's headers, i64::MIN.
        _, headers, _ = s.req("GET", "/swagger-ui/")
        status, _ = s.json("POST", f"/api/admin/options/{opt}/stock-adjustments",
                           {"delta": -(2 ** 63), "reason": "probe"}, token=admin)
        report(14, f"/swagger-ui/ CSP: {headers.get('content-security-policy') is not None}, "
                   f"X-Frame-Options: {headers.get('x-frame-options')}; stock delta i64::MIN: {status}")
    finally:
        s.stop()
    if b"panicked" in open(f"{s.dir}/server.log", "rb").read():
        print("the server panicked (see", f"{s.dir}/server.log)")


def multipart(data):
    return (b"--probeboundary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.png\"\r\n"
            b"Content-Type: image/png\r\n\r\n" + data + b"\r\n--probeboundary--\r\n")


def ws_upgrade(port, token, origin):
    key = base64.b64encode(os.urandom(16)).decode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n"
                  f"Authorization: Bearer {token}\r\n\r\n").encode())
    line = sock.recv(1024).split(b"\r\n", 1)[0].decode()
    sock.close()
    return int(line.split()[1])


if __name__ == "__main__":
    main()
