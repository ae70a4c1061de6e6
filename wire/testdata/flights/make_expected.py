#!/usr/bin/env python3
"""Server-flight test vectors: cut them out of a capture, and describe them.

Everything TLS-specific here comes from tshark's dissection; this script does not
parse TLS itself (it only adds up the record lengths that tshark printed to know
where to cut).

  python3 make_expected.py extract capture.pcap
      For every flight in FLIGHTS: take the TCP payload the server (port P) sent
      in the first connection on that port (tshark -T fields -e tcp.payload,
      ordered by tcp.seq, retransmissions dropped), dissect those bytes with
      tshark, and keep the records from the first byte up to and including the
      last record of the first flight (see STOP rules below). Writes <name>.bin.

  python3 make_expected.py [--check]
      For every <name>.bin: wrap the bytes as one TCP segment sent from port 443
      to port 40000 (text2pcap -T 443,40000), run `tshark -T json -J tls`, and
      write <name>.expected.json. --check only compares (exit 1 on difference).

STOP rules ("mode"):
  shd        up to and including the record that holds ServerHelloDone (type 14)
  first+ccs  the first record, plus the next record if it is change_cipher_spec (20)
  alert      up to and including the first alert record (21)
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

FLIGHTS = {
    "openssl-tls12-ecdhe-rsa-3certs": (44331, "shd"),
    "openssl-tls12-dhe-rsa": (44332, "shd"),
    "openssl-tls13-hrr": (44333, "first+ccs"),
    "openssl-tls13-server-hello": (44334, "first+ccs"),
    "gnutls-tls12-flight": (44335, "shd"),
    "openssl-alert-handshake-failure": (44336, "alert"),
    "openssl-tls10-rsa": (44337, "shd"),
}

HRR_RANDOM = "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"  # RFC 8446 4.1.3


# ---------------------------------------------------------------- tshark I/O
def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def tshark_version():
    m = re.search(r"TShark \(Wireshark\) (\S+)", run([TSHARK, "--version"]))
    return m.group(1).rstrip(".") if m else "unknown"


def to_pcap(data: bytes, pcap: str):
    txt = pcap + ".txt"
    with open(txt, "w") as f:
        for off in range(0, len(data), 16):
            f.write("%06x  %s\n" % (off, " ".join("%02x" % b for b in data[off:off + 16])))
    subprocess.run([TEXT2PCAP, "-q", "-T", "443,40000", "-4", "127.0.0.1,127.0.0.1",
                    txt, pcap], check=True, capture_output=True)


def dissect(data: bytes):
    """tshark JSON (duplicate keys kept as ordered (key, value) pairs) of `data`."""
    with tempfile.TemporaryDirectory() as td:
        pcap = os.path.join(td, "x.pcap")
        to_pcap(data, pcap)
        out = run([TSHARK, "-r", pcap, "-T", "json", "-J", "tls",
                   "--disable-protocol", "x509af"])
    pkts = json.loads(out, object_pairs_hook=lambda pairs: list(pairs))
    assert len(pkts) == 1
    return first(pkts[0], "layers")


def is_obj(v):
    return isinstance(v, list) and all(isinstance(p, tuple) and len(p) == 2 for p in v)


def walk(node):
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


def direct(node, key):
    """values of `key` that are direct children of node (no recursion)."""
    return [v for k, v in node if k == key] if is_obj(node) else []


def hex16(v):
    return "0x%04x" % int(v, 0)


def records_of(layers):
    """All tls.record objects in wire order (there may be several 'tls' layers)."""
    recs = []
    for tls in [v for k, v in walk(layers) if k == "tls"]:
        recs.extend(direct(tls, "tls.record"))
    return recs


def handshakes_of(rec):
    return direct(rec, "tls.handshake")


# ------------------------------------------------------------------ extract
def server_payload(pcap: str, port: int) -> bytes:
    out = run([TSHARK, "-r", pcap, "-Y",
               "tcp.srcport==%d && tcp.len>0 && !tcp.analysis.retransmission" % port,
               "-o", "tcp.relative_sequence_numbers:TRUE",
               "-T", "fields", "-e", "tcp.stream", "-e", "tcp.seq", "-e", "tcp.payload"])
    rows = [l.split("\t") for l in out.splitlines() if l.strip()]
    assert rows, "no server payload for port %d" % port
    stream = rows[0][0]
    segs = sorted((int(s), bytes.fromhex(p.replace(":", ""))) for st, s, p in rows if st == stream)
    data, nxt = b"", segs[0][0]
    for seq, p in segs:
        assert seq == nxt, "gap in TCP stream on port %d" % port
        data += p
        nxt = seq + len(p)
    return data


def cut(data: bytes, mode: str, name: str) -> bytes:
    recs = records_of(dissect(data))
    ends, off = [], 0
    for rec in recs:
        off += 5 + int(first(rec, "tls.record.length"))
        ends.append(off)
    for i, rec in enumerate(recs):
        ct = int(first(rec, "tls.record.content_type"))
        hs_types = [int(first(h, "tls.handshake.type", "-1")) for h in handshakes_of(rec)]
        if mode == "shd" and 14 in hs_types:
            return data[:ends[i]]
        if mode == "alert" and ct == 21:
            return data[:ends[i]]
        if mode == "first+ccs":
            if len(recs) > 1 and int(first(recs[1], "tls.record.content_type")) == 20:
                return data[:ends[1]]
            return data[:ends[0]]
    raise SystemExit("%s: stop condition %r not found" % (name, mode))


def extract(pcap: str):
    for name, (port, mode) in FLIGHTS.items():
        data = cut(server_payload(pcap, port), mode, name)
        with open(os.path.join(HERE, name + ".bin"), "wb") as f:
            f.write(data)
        print("%-36s %5d bytes" % (name, len(data)))


# ------------------------------------------------------------------ describe
def extensions(hs):
    out = []
    for k, e in hs:
        if k.startswith("Extension: "):
            out.append({"type": "0x%04x" % int(first(e, "tls.handshake.extension.type")),
                        "length": int(first(e, "tls.handshake.extension.len"))})
    return out


def ext_node(hs, t):
    for k, e in hs:
        if k.startswith("Extension: ") and int(first(e, "tls.handshake.extension.type")) == t:
            return e
    return None


def describe_server_hello(hs):
    rnd = (first(hs, "tls.handshake.random") or "").replace(":", "")
    sv = ext_node(hs, 43)
    ks = ext_node(hs, 51)
    ks_group = ks_len = None
    if ks is not None:
        g = first(ks, "tls.handshake.extensions_key_share_selected_group")  # HRR form
        if g is None:
            g = first(ks, "tls.handshake.extensions_key_share_group")
            kl = first(ks, "tls.handshake.extensions_key_share_key_exchange_length")
            ks_len = int(kl) if kl is not None else None
        ks_group = hex16(g) if g is not None else None
    sid_len = int(first(hs, "tls.handshake.session_id_length", "0"))
    exts = extensions(hs)
    total = first(hs, "tls.handshake.extensions_length")
    if total is not None:
        assert int(total) == sum(4 + e["length"] for e in exts)
    return {
        "version": hex16(first(hs, "tls.handshake.version")),
        "random": rnd,
        "hello_retry_request": rnd == HRR_RANDOM,
        "session_id_length": sid_len,
        "session_id": (first(hs, "tls.handshake.session_id") or "").replace(":", ""),
        "cipher_suite": hex16(first(hs, "tls.handshake.ciphersuite")),
        "compression": int(first(hs, "tls.handshake.comp_method")),
        "extensions": exts,
        "supported_versions_selected": (hex16(first(sv, "tls.handshake.extensions.supported_version"))
                                        if sv is not None else None),
        "key_share_group": ks_group,
        "key_share_length": ks_len,
    }


def describe_ske(hs):
    def opt_int(key):
        v = first(hs, key)
        return None if v is None else int(v, 0)
    sig = first(hs, "tls.handshake.sig_hash_alg")
    d = {"signature_scheme": hex16(sig) if sig is not None else None,
         "signature_length": opt_int("tls.handshake.sig_len")}
    if first(hs, "tls.handshake.server_curve_type") is not None:
        d.update({"kind": "ecdhe",
                  "curve_type": opt_int("tls.handshake.server_curve_type"),
                  "named_curve": hex16(first(hs, "tls.handshake.server_named_curve")),
                  "pubkey_length": opt_int("tls.handshake.server_point_len")})
    elif first(hs, "tls.handshake.p_len") is not None:
        d.update({"kind": "dhe",
                  "p_length": opt_int("tls.handshake.p_len"),
                  "g_length": opt_int("tls.handshake.g_len"),
                  "ys_length": opt_int("tls.handshake.ys_len")})
    else:
        d["kind"] = "unknown"
    return dict(sorted(d.items()))


def describe_cert_request(hs):
    return {
        "certificate_types": [int(v) for v in all_of(hs, "tls.handshake.cert_type")],
        "signature_algorithms": [hex16(v) for v in all_of(hs, "tls.handshake.sig_hash_alg")],
        "distinguished_names_length": int(first(hs, "tls.handshake.dnames_len", "0")),
    }


def describe(data: bytes, version: str, name: str):
    layers = dissect(data)
    for k, _ in walk(layers):
        if k.startswith("_ws.malformed"):
            raise SystemExit("%s: tshark reports malformed data" % name)
    recs = records_of(layers)
    records, messages, alerts = [], [], []
    sh = certs = ske = creq = None
    for rec in recs:
        ct = int(first(rec, "tls.record.content_type"))
        records.append({"content_type": ct,
                        "version": hex16(first(rec, "tls.record.version")),
                        "length": int(first(rec, "tls.record.length"))})
        if ct == 21:
            for a in direct(rec, "tls.alert_message"):
                alerts.append({"level": int(first(a, "tls.alert_message.level")),
                               "description": int(first(a, "tls.alert_message.desc"))})
        for hs in handshakes_of(rec):
            t = int(first(hs, "tls.handshake.type"))
            messages.append({"type": t, "length": int(first(hs, "tls.handshake.length"))})
            if t == 2 and sh is None:
                sh = describe_server_hello(hs)
            elif t == 11 and certs is None:
                certs = [int(v) for v in all_of(hs, "tls.handshake.certificate_length")]
            elif t == 12 and ske is None:
                ske = describe_ske(hs)
            elif t == 13 and creq is None:
                creq = describe_cert_request(hs)
    assert sum(5 + r["length"] for r in records) == len(data), \
        "%s: tshark's records do not cover the file exactly" % name
    return {
        "source": "tshark %s -T json -J tls (file bytes wrapped by text2pcap -T 443,40000 as one "
                  "TCP segment 127.0.0.1:443->127.0.0.1:40000; generated by make_expected.py)" % version,
        "file_length": len(data),
        "records": records,
        "handshake_messages": messages,
        "server_hello": sh,
        "certificate_lengths": certs,
        "server_key_exchange": ske,
        "certificate_request": creq,
        "alerts": alerts,
    }


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "extract":
        extract(sys.argv[2])
        return
    check = "--check" in sys.argv
    version = tshark_version()
    changed = 0
    for path in sorted(glob.glob(os.path.join(HERE, "*.bin"))):
        name = os.path.basename(path)[:-4]
        data = open(path, "rb").read()
        text = json.dumps(describe(data, version, name), indent=1) + "\n"
        dst = os.path.join(HERE, name + ".expected.json")
        old = open(dst).read() if os.path.exists(dst) else None
        if old != text:
            changed += 1
            if not check:
                with open(dst, "w") as f:
                    f.write(text)
        print("%-36s %s" % (name, "changed" if old != text else "same"))
    if check and changed:
        sys.exit(1)


if __name__ == "__main__":
    main()
