#!/usr/bin/env python3
"""peers.py ROLE PORT [ARGS...] -- small loopback servers for the preamble
captures of make.sh: each speaks one protocol's cleartext until the client
asks for TLS, then hands the socket to Python's ssl module (OpenSSL) for
a real handshake, or relays to a TLS server as a proxy. One connection,
then exit.

  peers.py imap|pop3|ftp|xmpp|irc|ldap PORT CERT KEY   STARTTLS servers
  peers.py socks PORT                                   SOCKS4/4a/5 proxy
  peers.py connect PORT                                 HTTP CONNECT proxy

Everything listens on 127.0.0.1 only.
"""
import select
import socket
import ssl
import sys


def lines(conn):
    buf = b""
    while True:
        while b"\n" not in buf:
            chunk = conn.recv(4096)
            if not chunk:
                return
            buf += chunk
        line, buf = buf.split(b"\n", 1)
        yield line.rstrip(b"\r")


def read_until(conn, marker):
    buf = b""
    while marker not in buf:
        chunk = conn.recv(4096)
        if not chunk:
            raise SystemExit("peers.py: the client left before %r" % marker)
        buf += chunk
    return buf


def tls(conn, cert, key):
    """The real handshake, then read until the client closes."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    s = ctx.wrap_socket(conn, server_side=True)
    try:
        while s.recv(4096):
            pass
    except (ssl.SSLError, OSError):
        pass
    s.close()


def starttls(role, conn, cert, key):
    send = conn.sendall
    if role == "imap":
        send(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] imap.test ready\r\n")
        for line in lines(conn):
            tag, _, cmd = line.decode().partition(" ")
            if cmd.upper() == "CAPABILITY":
                send(b"* CAPABILITY IMAP4rev1 STARTTLS\r\n" + tag.encode() + b" OK CAPABILITY completed\r\n")
            elif cmd.upper() == "STARTTLS":
                send(tag.encode() + b" OK Begin TLS negotiation now\r\n")
                return tls(conn, cert, key)
            else:
                send(tag.encode() + b" BAD unknown\r\n")
    elif role == "pop3":
        send(b"+OK pop3.test ready\r\n")
        for line in lines(conn):
            if line.upper() == b"STLS":
                send(b"+OK Begin TLS negotiation\r\n")
                return tls(conn, cert, key)
            send(b"-ERR unknown\r\n")
    elif role == "ftp":
        send(b"220-ftp.test FTP server\r\n220 ready\r\n")
        for line in lines(conn):
            if line.upper() in (b"AUTH TLS", b"AUTH SSL"):
                send(b"234 AUTH TLS successful\r\n")
                return tls(conn, cert, key)
            send(b"500 unknown\r\n")
    elif role == "irc":
        # A numeric before the grant, as servers send while they look the
        # client up (s_client reads numerics only).
        send(b":irc.test 020 * :Please wait while we process your connection.\r\n")
        for line in lines(conn):
            if line.upper() == b"STARTTLS":
                send(b":irc.test 670 * :STARTTLS successful, proceed with TLS handshake\r\n")
                return tls(conn, cert, key)
    elif role == "xmpp":
        read_until(conn, b">")
        send(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
             b"xmlns:stream='http://etherx.jabber.org/streams' id='hs1' from='xmpp.test' version='1.0'>"
             b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
             b"</stream:features>")
        read_until(conn, b"/>")
        send(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        return tls(conn, cert, key)
    elif role == "ldap":
        req = conn.recv(4096)
        # LDAPMessage { messageID, ExtendedResponse { resultCode success,
        # matchedDN "", diagnosticMessage "" } } for the StartTLS request.
        assert req[:1] == b"\x30" and b"1.3.6.1.4.1.1466.20037" in req, req
        msgid = req[4:4 + req[3]]
        body = b"\x02" + bytes([len(msgid)]) + msgid + b"\x78\x07\x0a\x01\x00\x04\x00\x04\x00"
        send(b"\x30" + bytes([len(body)]) + body)
        return tls(conn, cert, key)


def relay(a, b):
    socks = [a, b]
    while True:
        ready, _, _ = select.select(socks, [], [], 10)
        if not ready:
            return
        for s in ready:
            data = s.recv(65536)
            if not data:
                return
            (b if s is a else a).sendall(data)


def recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise SystemExit("peers.py: short read")
        buf += chunk
    return buf


def recv_until_nul(conn):
    buf = b""
    while not buf.endswith(b"\0"):
        buf += recv_exact(conn, 1)
    return buf[:-1]


def socks(conn):
    ver = recv_exact(conn, 1)[0]
    if ver == 4:
        recv_exact(conn, 1)  # CD: connect
        head = recv_exact(conn, 6)
        port, ip = int.from_bytes(head[:2], "big"), head[2:]
        recv_until_nul(conn)  # user id
        host = recv_until_nul(conn).decode() if ip[:3] == b"\0\0\0" and ip[3] else socket.inet_ntoa(ip)
        up = socket.create_connection((host, port))
        conn.sendall(b"\x00\x5a" + head[:2] + ip)
    elif ver == 5:
        methods = recv_exact(conn, recv_exact(conn, 1)[0])
        if 2 in methods:
            conn.sendall(b"\x05\x02")
            assert recv_exact(conn, 1) == b"\x01"
            recv_exact(conn, recv_exact(conn, 1)[0])
            recv_exact(conn, recv_exact(conn, 1)[0])
            conn.sendall(b"\x01\x00")
        else:
            conn.sendall(b"\x05\x00")
        _, cmd, _, atyp = recv_exact(conn, 4)
        if atyp == 1:
            host = socket.inet_ntoa(recv_exact(conn, 4))
        elif atyp == 3:
            host = recv_exact(conn, recv_exact(conn, 1)[0]).decode()
        else:
            host = socket.inet_ntop(socket.AF_INET6, recv_exact(conn, 16))
        port = int.from_bytes(recv_exact(conn, 2), "big")
        up = socket.create_connection((host, port))
        conn.sendall(b"\x05\x00\x00\x01\x7f\x00\x00\x01" + port.to_bytes(2, "big"))
    else:
        raise SystemExit("peers.py: not SOCKS: %d" % ver)
    relay(conn, up)


def connect(conn):
    head = read_until(conn, b"\r\n\r\n")
    target = head.split(b" ")[1].decode()
    host, port = target.rsplit(":", 1)
    up = socket.create_connection((host, int(port)))
    conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    relay(conn, up)


def main():
    role, port = sys.argv[1], int(sys.argv[2])
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(1)
    print("listening", flush=True)
    conn, _ = ls.accept()
    if role == "socks":
        socks(conn)
    elif role == "connect":
        connect(conn)
    else:
        starttls(role, conn, sys.argv[3], sys.argv[4])
    conn.close()


if __name__ == "__main__":
    main()
