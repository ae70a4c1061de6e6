#!/usr/bin/env python3
"""reframe.py IN.pcap KIND OUT.pcap -- rewrite the Ethernet frames of a
loopback capture under another link layer, keeping every IP packet and
timestamp as captured: KIND is sll (Linux cooked v1), sll2 (Linux cooked
v2), null (BSD loopback, host byte order) or vlan (Ethernet with an 802.1Q
tag, VLAN 42)."""
import struct
import sys

src, kind, dst = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(src, "rb").read()
magic = data[:4]
if magic == b"\xd4\xc3\xb2\xa1":
    e = "<"
elif magic == b"\xa1\xb2\xc3\xd4":
    e = ">"
else:
    sys.exit(f"{src}: not a little/big-endian microsecond pcap")
_, vmaj, vmin, zone, sig, snap, link = struct.unpack(e + "IHHiIII", data[:24])
assert link == 1, "input must be Ethernet"
LINK = {"sll": 113, "sll2": 276, "null": 0, "vlan": 1}[kind]
out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snap, LINK)]
off = 24
while off + 16 <= len(data):
    sec, usec, incl, orig = struct.unpack(e + "IIII", data[off:off + 16])
    frame = data[off + 16:off + 16 + incl]
    off += 16 + incl
    mac_src, ethertype, payload = frame[6:12], frame[12:14], frame[14:]
    if kind == "sll":
        # packet type 0 (to us), ARPHRD_LOOPBACK, 6-byte address, protocol.
        head = struct.pack(">HHH", 0, 772, 6) + mac_src + b"\0\0" + ethertype
    elif kind == "sll2":
        # protocol, reserved, interface index 1, ARPHRD_LOOPBACK, type 0, 6-byte address.
        head = ethertype + b"\0\0" + struct.pack(">IHBB", 1, 772, 0, 6) + mac_src + b"\0\0"
    elif kind == "null":
        af = 2 if ethertype == b"\x08\x00" else 10
        head = struct.pack("<I", af)
    else:
        head = frame[:12] + b"\x81\x00" + struct.pack(">H", 42) + ethertype
    new = head + payload
    out.append(struct.pack("<IIII", sec, usec, len(new), orig - len(frame) + len(new)))
    out.append(new)
open(dst, "wb").write(b"".join(out))
