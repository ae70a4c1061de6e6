#!/usr/bin/env python3
"""Regenerate <name>.expected.json for every <name>.hex in this folder.

Ground truth comes ONLY from tshark's dissection.  This script contains no TLS
parsing of its own: it
  1. turns the hex file into raw bytes,
  2. writes them as an offset hexdump and lets `text2pcap -T 40000,443 -4 ...`
     wrap them into one TCP segment (client 127.0.0.1:40000 -> 127.0.0.1:443),
  3. runs `tshark -r x.pcap -T json -J tls`,
  4. reads tshark's JSON (which contains duplicate keys, so it is loaded with
     object_pairs_hook to keep every value in document == wire order),
  5. copies the values tshark printed into the schema below.

Usage:  python3 make_expected.py          (needs tshark + text2pcap on PATH,
                                           or TSHARK / TEXT2PCAP env vars)
        python3 make_expected.py --check  (exit 1 if a file would change)

Schema notes (all "hex ids" are lowercase 4-digit strings like "0x1302"):
  * extensions[].length, session_ticket_length, padding_length and
    renegotiation_info_length are the extension_data length
    (tshark field tls.handshake.extension.len), NOT an inner length field.
  * record_size_limit / max_fragment_length / heartbeat_mode are the values
    inside the extension (tls.record_size_limit,
    tls.handshake.max_fragment_length, tls.handshake.extension.heartbeat.mode).
  * status_request / extended_master_secret / encrypt_then_mac are presence
    flags of extension types 5 / 23 / 22.
"""
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TSHARK = os.environ.get("TSHARK", "tshark")
TEXT2PCAP = os.environ.get("TEXT2PCAP", "text2pcap")


# ---------------------------------------------------------------- tshark I/O
def tshark_version():
    out = subprocess.run([TSHARK, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"TShark \(Wireshark\) (\S+)", out)
    return m.group(1).rstrip(".") if m else "unknown"


def to_pcap(data: bytes, pcap: str):
    """Wrap raw bytes as one TCP payload to port 443 using text2pcap."""
    txt = pcap + ".txt"
    with open(txt, "w") as f:
        for off in range(0, len(data), 16):
            chunk = data[off:off + 16]
            f.write("%06x  %s\n" % (off, " ".join("%02x" % b for b in chunk)))
    subprocess.run([TEXT2PCAP, "-q", "-T", "40000,443", "-4", "127.0.0.1,127.0.0.1",
                    txt, pcap], check=True, capture_output=True)


def tshark_json(pcap: str):
    out = subprocess.run([TSHARK, "-r", pcap, "-T", "json", "-J", "tls",
                          "-o", "tls.desegment_ssl_records:TRUE"],
                         check=True, capture_output=True, text=True).stdout
    # keep duplicate keys: every JSON object becomes a list of (key, value)
    return json.loads(out, object_pairs_hook=lambda pairs: list(pairs))


# ------------------------------------------------- walking tshark's JSON tree
def is_obj(v):
    return isinstance(v, list) and all(isinstance(p, tuple) and len(p) == 2 for p in v)


def walk(node):
    """Yield (key, value) for every pair in document order, depth first."""
    if is_obj(node):
        for k, v in node:
            yield k, v
            yield from walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v)


def all_of(node, key):
    return [v for k, v in walk(node) if k == key]


def first(node, key, default=None):
    for k, v in walk(node):
        if k == key:
            return v
    return default


def children(node, pred):
    return [(k, v) for k, v in node if pred(k)] if is_obj(node) else []


def hex16(v):
    return "0x%04x" % int(v, 0)


def colon_hex(v):
    return (v or "").replace(":", "").lower()


# ------------------------------------------------------------------ extract
def expected_for(data: bytes, version: str, name: str):
    with tempfile.TemporaryDirectory() as td:
        pcap = os.path.join(td, "x.pcap")
        to_pcap(data, pcap)
        pkts = tshark_json(pcap)
    assert len(pkts) == 1, "expected one frame"
    layers = first(pkts[0], "layers")
    for k, _ in walk(layers):
        if k.startswith("_ws.malformed") or k.startswith("_ws.expert"):
            raise SystemExit("%s: tshark reports a malformed/expert item: %s" % (name, k))
    tls = first(layers, "tls")
    records = all_of(tls, "tls.record")
    assert len(records) == 1, "%s: expected exactly one TLS record, tshark saw %d" % (name, len(records))
    rec = records[0]
    hss = all_of(rec, "tls.handshake")
    assert len(hss) == 1, "%s: expected one handshake message" % name
    hs = hss[0]
    assert first(hs, "tls.handshake.type") == "1", "%s: not a ClientHello" % name

    exts = children(hs, lambda k: k.startswith("Extension: "))
    ext_list = []
    by_type = {}
    for _, e in exts:
        t = int(first(e, "tls.handshake.extension.type"))
        ln = int(first(e, "tls.handshake.extension.len"))
        ext_list.append({"type": "0x%04x" % t, "length": ln})
        by_type.setdefault(t, e)  # first occurrence wins (duplicates stay in ext_list)

    # consistency check on tshark's own numbers (no parsing of bytes here)
    ext_total = first(hs, "tls.handshake.extensions_length")
    if ext_total is not None:
        assert int(ext_total) == sum(4 + x["length"] for x in ext_list), name

    def ext(t):
        return by_type.get(t)

    def ext_len(t):
        e = ext(t)
        return None if e is None else int(first(e, "tls.handshake.extension.len"))

    def ext_vals(t, key, conv):
        e = ext(t)
        return None if e is None else [conv(v) for v in all_of(e, key)]

    def ext_val(t, key, conv):
        e = ext(t)
        if e is None:
            return None
        v = first(e, key)
        return None if v is None else conv(v)

    sni = None
    if ext(0) is not None:
        names = all_of(ext(0), "tls.handshake.extensions_server_name")
        sni = names[0] if names else None

    out = {
        "source": "tshark %s -T json -J tls (bytes wrapped by text2pcap -T 40000,443 as one "
                  "TCP segment 127.0.0.1:40000->127.0.0.1:443; generated by make_expected.py)" % version,
        "record_version": hex16(first(rec, "tls.record.version")),
        "record_length": int(first(rec, "tls.record.length")),
        "handshake_length": int(first(hs, "tls.handshake.length")),
        "legacy_version": hex16(first(hs, "tls.handshake.version")),
        "random": colon_hex(first(hs, "tls.handshake.random")),
        "session_id": colon_hex(first(hs, "tls.handshake.session_id", "")),
        "cipher_suites": [hex16(v) for v in all_of(first(hs, "tls.handshake.ciphersuites"),
                                                   "tls.handshake.ciphersuite")],
        "compression_methods": [int(v) for v in all_of(first(hs, "tls.handshake.comp_methods"),
                                                       "tls.handshake.comp_method")],
        "extensions": ext_list,
        "sni": sni,
        "supported_groups": ext_vals(10, "tls.handshake.extensions_supported_group", hex16),
        "ec_point_formats": ext_vals(11, "tls.handshake.extensions_ec_point_format", int),
        "signature_algorithms": ext_vals(13, "tls.handshake.sig_hash_alg", hex16),
        "supported_versions": ext_vals(43, "tls.handshake.extensions.supported_version", hex16),
        "key_share_groups": ext_vals(51, "tls.handshake.extensions_key_share_group", hex16),
        "key_share_lengths": ext_vals(51, "tls.handshake.extensions_key_share_key_exchange_length", int),
        "alpn": ext_vals(16, "tls.handshake.extensions_alpn_str", str),
        "psk_key_exchange_modes": ext_vals(45, "tls.extension.psk_ke_mode", int),
        "status_request": ext(5) is not None,
        "session_ticket_length": ext_len(35),
        "padding_length": ext_len(21),
        "renegotiation_info_length": ext_len(0xff01),
        "extended_master_secret": ext(23) is not None,
        "encrypt_then_mac": ext(22) is not None,
        "heartbeat_mode": ext_val(15, "tls.handshake.extension.heartbeat.mode", int),
        "record_size_limit": ext_val(28, "tls.record_size_limit", int),
        "max_fragment_length": ext_val(1, "tls.handshake.max_fragment_length", int),
    }
    if out["session_id"] == "" and first(hs, "tls.handshake.session_id_length") not in (None, "0"):
        raise SystemExit("%s: session id length mismatch" % name)
    return out


def main():
    check = "--check" in sys.argv
    version = tshark_version()
    changed = 0
    files = sorted(glob.glob(os.path.join(HERE, "*.hex")))
    for path in files:
        name = os.path.basename(path)[:-4]
        data = bytes.fromhex("".join(open(path).read().split()))
        text = json.dumps(expected_for(data, version, name), indent=1) + "\n"
        dst = os.path.join(HERE, name + ".expected.json")
        old = open(dst).read() if os.path.exists(dst) else None
        if old != text:
            changed += 1
            if not check:
                with open(dst, "w") as f:
                    f.write(text)
        print("%-45s %s" % (name, "changed" if old != text else "same"))
    if check and changed:
        sys.exit(1)


if __name__ == "__main__":
    main()
