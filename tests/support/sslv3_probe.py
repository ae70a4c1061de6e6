#!/usr/bin/env python3
"""Send one hand-built ClientHello to HOST:PORT and report the first record back.

Used to check that a test server (tlslite-ng, gnutls-serv, ...) really negotiates a
given protocol version. Loopback only by intent: refuses non-127.x / ::1 hosts.

  python3 sslv3_probe.py 127.0.0.1 44340                       # SSLv3, suites 0005 0004 000a 002f
  python3 sslv3_probe.py 127.0.0.1 44340 --version 0x0301 --sni localhost
  python3 sslv3_probe.py 127.0.0.1 44340 --suites 0x0005

The ClientHello: record 16 <rec-version> <len>, client_hello version = --version,
32-byte random, empty session id, the given suites, compression [null], and NO
extensions block at all unless --sni is given (then exactly one server_name ext).
Prints one line of key=value pairs and exits 0 when a ServerHello came back.
"""
import argparse
import ipaddress
import os
import socket
import struct
import sys
import time


def client_hello(version, suites, sni=None, rec_version=None):
    body = struct.pack(">H", version) + os.urandom(32) + b"\x00"
    cs = b"".join(struct.pack(">H", s) for s in suites)
    body += struct.pack(">H", len(cs)) + cs + b"\x01\x00"
    if sni is not None:
        name = sni.encode()
        entry = b"\x00" + struct.pack(">H", len(name)) + name
        sni_data = struct.pack(">H", len(entry)) + entry
        ext = struct.pack(">HH", 0, len(sni_data)) + sni_data
        body += struct.pack(">H", len(ext)) + ext
    hs = b"\x01" + struct.pack(">I", len(body))[1:] + body
    rv = version if rec_version is None else rec_version
    return b"\x16" + struct.pack(">HH", rv, len(hs)) + hs


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--version", default="0x0300")
    ap.add_argument("--record-version", default=None)
    ap.add_argument("--suites", default="0x0005,0x0004,0x000a,0x002f")
    ap.add_argument("--sni", default=None)
    ap.add_argument("--timeout", type=float, default=5.0)
    a = ap.parse_args()
    if not ipaddress.ip_address(a.host).is_loopback:
        sys.exit("loopback addresses only")
    ver = int(a.version, 0)
    recv = int(a.record_version, 0) if a.record_version else None
    suites = [int(x, 0) for x in a.suites.split(",")]
    hello = client_hello(ver, suites, a.sni, recv)
    t0 = time.monotonic()
    with socket.create_connection((a.host, a.port), timeout=a.timeout) as s:
        s.sendall(hello)
        hdr = recv_exact(s, 5)
        if len(hdr) < 5:
            print("result=closed bytes=%s" % hdr.hex())
            return 2
        ctype, rver, rlen = hdr[0], struct.unpack(">H", hdr[1:3])[0], struct.unpack(">H", hdr[3:5])[0]
        body = recv_exact(s, rlen)
    out = {"record_type": ctype, "record_version": "0x%04x" % rver, "record_length": rlen,
           "ms": round((time.monotonic() - t0) * 1000)}
    if ctype == 21 and len(body) >= 2:
        out.update(result="alert", level=body[0], description=body[1])
        rc = 1
    elif ctype == 22 and len(body) >= 6 and body[0] == 2:
        sid_len = body[38]
        off = 39 + sid_len
        out.update(result="server_hello",
                   version="0x%04x" % struct.unpack(">H", body[4:6])[0],
                   session_id_length=sid_len,
                   cipher_suite="0x%04x" % struct.unpack(">H", body[off:off + 2])[0],
                   compression=body[off + 2])
        rc = 0
    else:
        out.update(result="other", first_bytes=body[:16].hex())
        rc = 1
    print(" ".join("%s=%s" % kv for kv in out.items()))
    return rc


if __name__ == "__main__":
    sys.exit(main())
