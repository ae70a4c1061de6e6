#!/usr/bin/env python3
"""pcap_gen.py OUT.pcap SIZE_MB [CONCURRENT] -- a large synthetic capture for
the `hsscan pcap` benchmark (benches/pcap.md), built from the real loopback
captures in pcaps/.

Each template capture (TLS 1.3 and 1.2 handshakes on port 443, SMTP
STARTTLS sessions, a drop after the hello, a no-shared-cipher alert) is
replayed as many times as needed, each copy with its own client address
(10.0.0.0/8) and port and its server moved to a standard port (443, or 25
for SMTP) so that tshark dissects it without being told. CONCURRENT
connections (default 64) are interleaved frame by frame, as on a busy MTA.
Checksums are left as captured (neither tool verifies them by default).
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PCAPS = os.path.join(HERE, "..", "pcaps")
TEMPLATES = [
    ("tls13.pcap", 443),
    ("tls12.pcap", 443),
    ("gnutls.pcap", 443),
    ("starttls.pcap", 25),
    ("lb-drop.pcap", 25),
    ("no-shared-cipher.pcap", 443),
    ("hrr.pcap", 443),
]


def frames(path):
    data = open(path, "rb").read()
    assert data[:4] == b"\xd4\xc3\xb2\xa1", path
    off, out = 24, []
    while off + 16 <= len(data):
        sec, usec, incl, orig = struct.unpack("<IIII", data[off:off + 16])
        out.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return out


def template(name, server_port):
    fs = frames(os.path.join(PCAPS, name))
    # The SYN's destination port is the server's.
    sport = next(struct.unpack(">H", f[36:38])[0] for f in fs if (f[47] & 0x12) == 0x02)
    out = []
    for f in fs:
        src_port, dst_port = struct.unpack(">HH", f[34:38])
        to_server = dst_port == sport
        out.append((bytearray(f), to_server))
    return out, server_port


def main():
    out_path, size_mb = sys.argv[1], int(sys.argv[2])
    concurrent = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    limit = size_mb * 1024 * 1024
    temps = [template(n, p) for n, p in TEMPLATES]
    out = open(out_path, "wb", buffering=1 << 22)
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
    written, conns, sec, usec = 24, 0, 1_700_000_000, 0
    active = []  # [frames, next index, client ip bytes, client port, server port]
    server_ip = bytes([10, 255, 0, 25])
    while written < limit or active:
        while len(active) < concurrent and written < limit:
            fs, sport = temps[conns % len(temps)]
            cip = bytes([10, (conns >> 16) & 0xFF, (conns >> 8) & 0xFF, conns & 0xFF or 1])
            cport = 1024 + conns % 60000
            active.append([fs, 0, cip, cport, sport])
            conns += 1
        i = 0
        while i < len(active):
            fs, n, cip, cport, sport = active[i]
            frame, to_server = fs[n]
            f = bytearray(frame)
            if to_server:
                f[26:30], f[30:34] = cip, server_ip
                f[34:38] = struct.pack(">HH", cport, sport)
            else:
                f[26:30], f[30:34] = server_ip, cip
                f[34:38] = struct.pack(">HH", sport, cport)
            usec += 7
            if usec >= 1_000_000:
                sec, usec = sec + 1, usec - 1_000_000
            out.write(struct.pack("<IIII", sec, usec, len(f), len(f)))
            out.write(f)
            written += 16 + len(f)
            active[i][1] += 1
            if active[i][1] == len(fs):
                active.pop(i)
            else:
                i += 1
    out.close()
    print("%s: %.1f MB, %d connections" % (out_path, written / 1e6, conns))


if __name__ == "__main__":
    main()
