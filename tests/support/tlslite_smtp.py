#!/usr/bin/env python3
"""An SMTP STARTTLS receiver on tlslite-ng, for the sender-verdict tests: a
server that speaks only SSLv3 with only RC4 suites, which no OpenSSL or
GnuTLS a modern machine ships can be (see tests/support/TLSLITE.md).

    tlslite_smtp.py CHAIN.pem KEY.pem HOST PORT

Banner, EHLO (STARTTLS advertised), STARTTLS, then tlslite's handshake as
server with minVersion = maxVersion = SSLv3 and cipherNames = ["rc4"];
after a handshake it answers EHLO and QUIT inside TLS. One thread per
connection; every read is capped and timed out. Runs until killed.
"""
import socket
import socketserver
import sys

from tlslite.api import HandshakeSettings, TLSConnection, X509CertChain, parsePEMKey

TIMEOUT = 10
CAP = 4096


def read_line(f):
    line = f.readline(CAP)
    if not line.endswith(b"\n"):
        raise IOError("line too long or connection closed")
    return line.strip().upper()


class Handler(socketserver.StreamRequestHandler):
    # Unbuffered: a line is read byte by byte, so nothing of the client's
    # first TLS record is swallowed by a buffer before the handshake.
    rbufsize = 0

    def handle(self):
        self.request.settimeout(TIMEOUT)
        w = self.request.sendall
        w(b"220 mx.test.example ESMTP tlslite\r\n")
        try:
            while True:
                cmd = read_line(self.rfile)
                if cmd.startswith(b"EHLO"):
                    w(b"250-mx.test.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
                elif cmd.startswith(b"HELO"):
                    w(b"250 mx.test.example\r\n")
                elif cmd == b"STARTTLS":
                    w(b"220 2.0.0 Ready to start TLS\r\n")
                    break
                elif cmd == b"QUIT":
                    w(b"221 2.0.0 Bye\r\n")
                    return
                else:
                    w(b"502 5.5.2 Error: command not recognized\r\n")
            conn = TLSConnection(self.request)
            settings = HandshakeSettings()
            settings.minVersion = (3, 0)
            settings.maxVersion = (3, 0)
            settings.versions = [(3, 0)]
            settings.cipherNames = ["rc4"]
            conn.handshakeServer(certChain=CHAIN, privateKey=KEY, settings=settings)
            while True:
                data = b""
                while not data.endswith(b"\n"):
                    chunk = conn.read(max=CAP)
                    if not chunk or len(data) > CAP:
                        return
                    data += chunk
                if data.upper().startswith(b"QUIT"):
                    conn.write(b"221 2.0.0 Bye\r\n")
                    conn.close()
                    return
                conn.write(b"250 mx.test.example\r\n")
        except Exception:  # a failed handshake ends the session, as it should
            return


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == "__main__":
    chain_pem, key_pem, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    CHAIN = X509CertChain()
    CHAIN.parsePemList(open(chain_pem).read())
    KEY = parsePEMKey(open(key_pem).read(), private=True)
    with Server((host, port), Handler) as s:
        s.serve_forever()
