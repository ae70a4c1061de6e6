#!/usr/bin/env python3
"""An HTTPS server that holds every response until the test releases it.

Usage: held_https.py IP PORT CHAIN KEY BODY_FILE RELEASE_FILE

Serves BODY_FILE (as text/plain, 200) for any GET, but only once
RELEASE_FILE exists: a policy server whose answer is as slow as the test
wants, without a timed sleep. Prints "listening" once bound, "request
PATH" when a request has been read, "released" before each answer, and
"abandoned" if no release comes within the bound below.
"""
import os
import socket
import ssl
import sys
import threading
import time

HOLD_LIMIT = 120.0  # seconds: never hold a connection forever
READ_LIMIT = 16384  # bytes of request head read at most


def log(line):
    print(line, flush=True)


def serve(conn, body, release):
    try:
        conn.settimeout(30)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < READ_LIMIT:
            chunk = conn.recv(4096)
            if not chunk:
                return
            head += chunk
        path = head.split(b" ", 2)[1].decode("latin-1") if head.count(b" ") >= 2 else "?"
        log(f"request {path}")
        deadline = time.monotonic() + HOLD_LIMIT
        while not os.path.exists(release):
            if time.monotonic() > deadline:
                log("abandoned")
                return
            time.sleep(0.02)
        log("released")
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
            % len(body)
            + body
        )
    except (OSError, ssl.SSLError) as e:
        log(f"error {e}")
    finally:
        try:
            conn.close()
        except OSError:
            pass


def main():
    ip, port, chain, key, body_file, release = sys.argv[1:7]
    with open(body_file, "rb") as f:
        body = f.read()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(chain, key)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((ip, int(port)))
    sock.listen(16)
    log("listening")
    while True:
        raw, _ = sock.accept()
        try:
            raw.settimeout(30)
            conn = ctx.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError) as e:
            log(f"handshake error {e}")
            raw.close()
            continue
        threading.Thread(target=serve, args=(conn, body, release), daemon=True).start()


if __name__ == "__main__":
    main()
