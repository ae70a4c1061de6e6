#!/usr/bin/env python3
"""A Postfix-like TLS client on the real OpenSSL 1.0.2 or 1.1.1 that the
nassl package bundles (nassl._nassl_legacy: 1.0.2e; nassl._nassl: 1.1.1w),
for the sender-verdict tests: the truth for the Postfix-on-OpenSSL-1.0.2
and -1.1.1 sender profiles, whose libraries Debian 12 no longer has.

    nassl_client.py --openssl 1.0.2|1.1.1 --ciphers LIST [--verify CAFILE]
                    [--match NAME] [--starttls] HOST PORT

The client is configured as Postfix configures its OpenSSL client
(src/tls/tls_client.c, tls_misc.c): SSLv23 method with SSLv2 and SSLv3
disabled (smtp_tls_protocols = !SSLv2, !SSLv3), the cipher list given
(Postfix's "medium" grade, plus ":!aNULL" at verify; "@SECLEVEL=0" below
verify on 1.1.1), no SNI, and at verify the chain must verify against
CAFILE and name MATCH. With --starttls it speaks SMTP first (banner, EHLO,
STARTTLS) as Postfix does.

Prints one line: "established CIPHER" or "failed: WHY"; exit 0 or 1.
Every read is capped and timed out.
"""
import argparse
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from nassl.ssl_client import OpenSslVerifyEnum, OpenSslVersionEnum

SSL_OP_NO_SSLv2 = 0x01000000
SSL_OP_NO_SSLv3 = 0x02000000
TIMEOUT = 5
# X509_V_ERR_* codes (OpenSSL's x509_vfy.h) the tests tell apart.
VERIFY_ERRORS = {
    2: "unable to get issuer certificate",
    18: "self-signed certificate",
    20: "unable to get local issuer certificate",
    62: "hostname mismatch",
    66: "EE certificate key too weak",
    67: "CA certificate key too weak",
    68: "CA signature digest algorithm too weak",
}
CAP = 64 * 1024


def reply(sock):
    """One SMTP reply (possibly multi-line); its code."""
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            raise IOError("connection closed during the SMTP dialog")
        data += chunk
        if len(data) > CAP:
            raise IOError("SMTP reply too long")
        lines = data.split(b"\r\n")
        done = [l for l in lines[:-1] if len(l) >= 4 and l[3:4] == b" "]
        if done:
            return done[0][:3].decode("ascii", "replace")


def starttls(sock):
    if reply(sock) != "220":
        raise IOError("no 220 banner")
    sock.sendall(b"EHLO client.test.example\r\n")
    if reply(sock) != "250":
        raise IOError("EHLO refused")
    sock.sendall(b"STARTTLS\r\n")
    code = reply(sock)
    if code != "220":
        raise IOError("STARTTLS answered %s" % code)


def name_matches(pem, name):
    """`openssl x509 -checkhost`: Postfix matches dNSName SANs (the CN
    only without them)."""
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as f:
        f.write(pem)
        f.flush()
        out = subprocess.run(
            ["openssl", "x509", "-noout", "-in", f.name, "-checkhost", name],
            capture_output=True, text=True, timeout=TIMEOUT,
        ).stdout
    return "does match" in out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--openssl", choices=["1.0.2", "1.1.1"], required=True)
    ap.add_argument("--ciphers", required=True)
    ap.add_argument("--verify", metavar="CAFILE")
    ap.add_argument("--match")
    ap.add_argument("--starttls", action="store_true")
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    a = ap.parse_args()
    if a.openssl == "1.0.2":
        from nassl.legacy_ssl_client import LegacySslClient as Client
    else:
        from nassl.ssl_client import SslClient as Client
    sock = socket.create_connection((a.host, a.port), timeout=TIMEOUT)
    client = None
    try:
        if a.starttls:
            starttls(sock)
        kw = {}
        if a.verify:
            kw = {"ssl_verify": OpenSslVerifyEnum.PEER, "ssl_verify_locations": Path(a.verify)}
        else:
            kw = {"ssl_verify": OpenSslVerifyEnum.NONE}
        client = Client(
            underlying_socket=sock,
            ssl_version=OpenSslVersionEnum.SSLV23,
            ignore_client_authentication_requests=True,
            **kw,
        )
        client._ssl.set_options(SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3)
        client.set_cipher_list(a.ciphers)
        client.do_handshake()
        cipher = client.get_current_cipher_name()
        if a.verify and a.match:
            chain = client.get_received_chain()
            if not chain or not name_matches(chain[0], a.match):
                print("failed: the certificate does not name %s" % a.match)
                return 1
        print("established %s" % cipher)
        return 0
    except Exception as e:  # the failure is the result
        why = " ".join(str(e).split())
        if client is not None and "certificate verify failed" in why:
            code = client._ssl.get_verify_result()
            why += " (verify error %d: %s)" % (code, VERIFY_ERRORS.get(code, "see x509_vfy.h"))
        print("failed: %s: %s" % (type(e).__name__, why))
        return 1
    finally:
        sock.close()


if __name__ == "__main__":
    sys.exit(main())
