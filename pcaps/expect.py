#!/usr/bin/env python3
"""expect.py [CAPTURE...] -- write CAPTURE.expected.json for each capture of
this folder, from tshark's dissection alone: hsscan is never run.

Each expectation file lists the TCP connections that carried TLS or SMTP,
in the order they started, with the fields tshark shows (addresses, start
time, the SMTP dialog, every ClientHello and ServerHello field, alerts and
their sender, certificate fingerprints, JA3/JA3S as tshark computes them,
how the connection ended). JA4, JA4_r and JA4S are computed here from
tshark's fields by FoxIO's specification (technical_details/JA4.md and
JA4S.md); tshark 4.0 has no JA4. The verdict (outcome and kind), the
preamble's protocol and the warnings are the scenario's truth, written in
SCENARIOS below from how make.sh built it.

Every key of SPEC §3b is written, null when tshark shows no such thing and
[] when it shows an empty one (an empty Certificate message). Text from the
wire (ALPN, SNI) is taken from tshark's raw field bytes and written
byte-exact, bytes that are not UTF-8 as \\xNN.
The test (tests/it/pcap.rs) compares hsscan's JSON with these files,
field by field, for the fields they hold.
"""
import hashlib
import json
import os
import struct
import subprocess
import sys

HRR_RANDOM = "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"

# How each capture was made (see make.sh) and so what its verdict must be.
# "smtp": the server port speaks SMTP (tshark is told to decode it so);
# "decode": another dissector tshark is told to use for the server port
# (the frames must then show that protocol), "preamble": the cleartext
# protocol before the TLS (SPEC §3b), "warnings": what hsscan must say it
# could not read (default none).
SCENARIOS = {
    "tls13.pcap": {"verdict": ("established", None)},
    "tls12.pcap": {"verdict": ("established", None)},
    "tls10.pcap": {"verdict": ("established", None)},
    # The emulator answers with a TLS 1.3 ServerHello and closes: no
    # handshake is ever completed (README "Emulate").
    "starttls.pcap": {"smtp": True, "preamble": "smtp", "verdict": ("failed", "closed-after-hello")},
    "gnutls.pcap": {"verdict": ("established", None)},
    "implicit-to-starttls.pcap": {"smtp": True, "preamble": "smtp", "verdict": ("failed", "plaintext-reply")},
    "ehlo-to-tls.pcap": {"smtp": True, "preamble": "smtp", "verdict": ("failed", "not-tls")},
    "no-shared-cipher.pcap": {"verdict": ("failed", "alert")},
    "lb-drop.pcap": {"smtp": True, "preamble": "smtp", "verdict": ("failed", "closed-after-hello")},
    "reset.pcap": {"smtp": True, "preamble": "smtp", "verdict": ("failed", "reset-after-hello")},
    "postfix-hello-512.pcap": {"smtp": True, "preamble": "smtp", "verdict": ("failed", "reset-after-hello")},
    "starttls-rejected.pcap": {"smtp": True, "preamble": "smtp", "verdict": ("failed", "starttls-rejected")},
    # The SSLv2 probe reads the SERVER-HELLO and closes.
    "sslv2.pcap": {"verdict": ("failed", "closed-after-hello")},
    "hrr.pcap": {"verdict": ("established", None)},
    "split-hello.pcap": {"verdict": ("established", None)},
    # The python client reads the ServerHello and closes.
    "grease.pcap": {"verdict": ("failed", "closed-after-hello")},
    "client-rejects-tls12.pcap": {"verdict": ("failed", "alert")},
    "client-rejects-tls13.pcap": {"verdict": ("failed", "alert")},
    "nano.pcap": {"verdict": ("established", None), "nano": True},
    # Postfix's smtp client delivering to Postfix's smtpd (tests/it/pcap.rs).
    "postfix.pcap": {"smtp": True, "preamble": "smtp", "verdict": ("established", None)},
    # dumpcap and editcap (from a nanosecond pcap) write nanosecond resolution.
    "sections.pcapng": {"verdict": ("established", None), "nano": True},
    "rawip.pcap": {"verdict": ("established", None)},
    "sll.pcap": {"verdict": ("established", None)},
    "sll2.pcap": {"verdict": ("established", None)},
    "null.pcap": {"verdict": ("established", None)},
    "vlan.pcap": {"verdict": ("established", None)},
    # openssl s_client -starttls PROTO against pcaps/peers.py's servers.
    "imap.pcap": {"decode": "imap", "preamble": "imap", "verdict": ("established", None)},
    "pop3.pcap": {"decode": "pop", "preamble": "pop3", "verdict": ("established", None)},
    "ftp.pcap": {"decode": "ftp", "preamble": "ftp", "verdict": ("established", None)},
    "irc.pcap": {"decode": "irc", "preamble": "irc", "verdict": ("established", None)},
    "xmpp.pcap": {"decode": "xmpp", "preamble": "xmpp", "verdict": ("established", None)},
    "ldap.pcap": {"decode": "ldap", "preamble": "ldap", "verdict": ("established", None)},
    # curl through pcaps/peers.py's proxies to s_server -www.
    "socks4.pcap": {"decode": "socks", "preamble": "socks4", "verdict": ("established", None)},
    "socks4a.pcap": {"decode": "socks", "preamble": "socks4", "verdict": ("established", None)},
    "socks5.pcap": {"decode": "socks", "preamble": "socks5", "verdict": ("established", None)},
    "http-connect.pcap": {"decode": "http", "preamble": "http-connect", "verdict": ("established", None)},
}

FIELDS = """frame.time_epoch ip.src ip.dst ipv6.src ipv6.dst tcp.stream tcp.srcport tcp.dstport
tcp.flags.syn tcp.flags.ack tcp.flags.fin tcp.flags.reset tcp.len
tls.record.content_type tls.record.version tls.record.length tls.handshake.type tls.handshake.version
tls.handshake.random tls.handshake.ciphersuite tls.handshake.comp_method tls.handshake.extension.type
tls.handshake.extensions_server_name tls.handshake.extensions_alpn_str
tls.handshake.extensions.supported_version tls.handshake.extensions_supported_group
tls.handshake.extensions_ec_point_format tls.handshake.sig_hash_alg_len tls.handshake.sig_hash_alg
tls.handshake.extensions_key_share_group tls.handshake.extensions_key_share_selected_group
tls.handshake.ja3 tls.handshake.ja3_full tls.handshake.ja3s tls.handshake.ja3s_full
tls.alert_message.level tls.alert_message.desc tls.handshake.certificate tls.handshake.cipherspec
smtp.req.command smtp.req.parameter smtp.response.code smtp.rsp.parameter frame.protocols frame.number tcp.segment""".split()

HANDSHAKE_NAMES = {
    1: "client_hello", 2: "server_hello", 4: "new_session_ticket", 8: "encrypted_extensions",
    11: "certificate", 12: "server_key_exchange", 13: "certificate_request", 14: "server_hello_done",
    15: "certificate_verify", 16: "client_key_exchange", 20: "finished", 22: "certificate_status",
}


def cp(v):
    """A codepoint as hsscan writes it, compared by id."""
    return {"id": "0x%04x" % int(v, 0)}


def grease(v):
    return (v & 0x0F0F) == 0x0A0A and (v >> 8) == (v & 0xFF)


def sha12(s):
    return "000000000000" if s == "" else hashlib.sha256(s.encode()).hexdigest()[:12]


VERSION_CODE = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3", 0x0002: "s2"}


def alpn_code(first):
    """JA4's two ALPN characters from the first ALPN value's bytes."""
    if not first:
        return "00"
    a, z = chr(first[0]), chr(first[-1])
    if a.isascii() and a.isalnum() and z.isascii() and z.isalnum():
        return a + z
    h = first.hex()
    return h[0] + h[-1]


def ja4(hello):
    """JA4 and JA4_r of a ClientHello, by JA4.md, from tshark's values."""
    exts = [int(e) for e in hello["ext"] if not grease(int(e))]
    if 43 in exts:
        version = max(v for v in hello["versions"] if not grease(v))
    else:
        version = hello["version"]
    ciphers = [c for c in hello["ciphers"] if not grease(c)]
    a = "t%s%s%02d%02d%s" % (
        VERSION_CODE.get(version, "00"),
        "d" if 0 in exts else "i",
        min(len(ciphers), 99),
        min(len(exts), 99),
        alpn_code(hello["alpn_bytes"][0] if hello["alpn_bytes"] else b""),
    )
    b = ",".join("%04x" % c for c in sorted(ciphers))
    c_exts = ",".join("%04x" % e for e in sorted(e for e in exts if e not in (0, 16)))
    sigs = ",".join("%04x" % s for s in hello["sigs"] if not grease(s))
    c = c_exts + ("_" + sigs if sigs else "")
    return "%s_%s_%s" % (a, sha12(b), sha12(c)), "%s_%s_%s" % (a, b, c)


def ja4s(sh):
    exts = [int(e) for e in sh["ext"]]
    version = sh["selected"]
    a = "t%s%02d%s" % (VERSION_CODE.get(version, "00"), min(len(exts), 99), alpn_code(sh["alpn_bytes"]))
    return "%s_%04x_%s" % (a, sh["cipher"], sha12(",".join("%04x" % e for e in exts)))


def rfc3339(epoch, nano):
    secs, frac = epoch.split(".")
    t = __import__("time").gmtime(int(secs))
    digits = frac.ljust(9, "0")[: 9 if nano else 6]
    return "%04d-%02d-%02dT%02d:%02d:%02d.%sZ" % (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, digits)


def tshark(path, args):
    out = subprocess.run(["tshark", "-r", path] + args, capture_output=True, text=True, check=True)
    return out.stdout


def server_ports(path):
    text = tshark(path, ["-Y", "tcp.flags.syn==1 && tcp.flags.ack==0", "-T", "fields", "-e", "tcp.dstport"])
    return sorted({int(p) for p in text.split()})


def passes(path, decode):
    """The frames as dissected with the server port decoded as `decode`."""
    args = []
    for p in server_ports(path):
        args += ["-d", "tcp.port==%d,%s" % (p, decode)]
    args += ["-T", "json"]
    for f in FIELDS:
        args += ["-e", f]
    return [pkt["_source"]["layers"] for pkt in json.loads(tshark(path, args))]


def raw_texts(path):
    """Per frame, the raw bytes of every ALPN name and server name tshark
    shows (its `_raw` field values), in order: tshark's string fields
    replace bytes that are not UTF-8, its raw values do not."""
    args = []
    for p in server_ports(path):
        args += ["-d", "tcp.port==%d,tls" % p]
    args += ["-Y", "tls.handshake.type==1 || tls.handshake.type==2", "-T", "json", "-x"]
    out = {}

    def walk(pairs, acc):
        for k, v in pairs:
            if k in ("tls.handshake.extensions_alpn_str_raw", "tls.handshake.extensions_server_name_raw"):
                acc.setdefault(k[: -len("_raw")], []).append(bytes.fromhex(v[0]))
            elif isinstance(v, list) and v and isinstance(v[0], tuple):
                walk(v, acc)

    pkts = json.loads(tshark(path, args), object_pairs_hook=lambda pairs: pairs)
    for pkt in pkts:
        acc = {}
        walk(pkt, acc)
        layers = dict(dict(pkt)["_source"])["layers"]
        number = dict(dict(layers)["frame"])["frame.number"]
        out[number] = acc
    return out


def text_of(b):
    """Bytes as hsscan writes network text: UTF-8, other bytes as \\xNN."""
    return b.decode("utf-8", errors="backslashreplace")


def frames(path, scenario):
    """TLS fields from tshark's TLS dissector (told to decode the server
    port as TLS, it finds the records after any cleartext); the cleartext
    protocol's fields from its own dissector."""
    tls = passes(path, "tls")
    decode = "smtp" if scenario.get("smtp") else scenario.get("decode")
    if decode is None:
        return tls
    other = {first(f, "frame.number"): f for f in passes(path, decode)}
    merged = []
    for f in tls:
        o = other.get(first(f, "frame.number"), {})
        m = {k: v for k, v in o.items() if not k.startswith("tls.")}
        m.update({k: v for k, v in f.items() if k.startswith("tls.")})
        merged.append(m)
    return merged


def first(layer, name, default=None):
    v = layer.get(name)
    return v[0] if v else default


def expect_file(name, scenario):
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name)
    streams = {}
    order = []
    raws = raw_texts(path)
    fs_all = frames(path, scenario)
    proto = scenario.get("decode")
    if proto and not any(proto in first(f, "frame.protocols", "").split(":") for f in fs_all):
        raise SystemExit("expect.py: %s: tshark sees no %s in it" % (name, proto))
    for f in fs_all:
        f["raw"] = raws.get(first(f, "frame.number"), {})
        sid = first(f, "tcp.stream")
        if sid is None:
            continue
        if sid not in streams:
            streams[sid] = {"frames": []}
            order.append(sid)
        streams[sid]["frames"].append(f)
    conns = []
    for sid in order:
        c = expect_stream(streams[sid]["frames"], scenario, int(sid))
        if c is not None:
            c = complete(c)
        if c is not None:
            conns.append(c)
    return {"capture": name, "connections": conns}


def expect_stream(fs, scenario, sid):
    syn = next(f for f in fs if first(f, "tcp.flags.syn") in ("1", "True") and first(f, "tcp.flags.ack") in ("0", "False"))
    src = first(syn, "ip.src") or first(syn, "ipv6.src")
    dst = first(syn, "ip.dst") or first(syn, "ipv6.dst")
    cport, sport = int(first(syn, "tcp.srcport")), int(first(syn, "tcp.dstport"))
    nano = scenario.get("nano", False) or sid in scenario.get("nano_streams", [])

    def from_client(f):
        return int(first(f, "tcp.srcport")) == cport

    c = {
        "client_ip": src,
        "client_port": cport,
        "server_ip": dst,
        "server_port": sport,
        "started": rfc3339(first(fs[0], "frame.time_epoch"), nano),
    }
    # Where the TLS starts: the client's first frame with a TLS (or SSLv2)
    # record. Cleartext before it is the preamble; the server's cleartext
    # is what it sent before that frame (after it, its bytes answer the hello).
    tls_at = next((i for i, f in enumerate(fs) if from_client(f) and f.get("tls.record.version")), None)
    if tls_at is not None and fs[tls_at].get("tcp.segment"):
        # A record reassembled from several segments starts in the first.
        numbers = [first(f, "frame.number") for f in fs]
        tls_at = min(numbers.index(n) for n in fs[tls_at]["tcp.segment"] if n in numbers)
    before = fs if tls_at is None else fs[:tls_at]
    client_bytes = sum(int(first(f, "tcp.len", "0")) for f in before if from_client(f))
    server_bytes = sum(int(first(f, "tcp.len", "0")) for f in before
                       if not from_client(f) and not f.get("tls.record.version"))
    c["preamble"] = None
    if client_bytes or server_bytes:
        c["preamble"] = {"protocol": scenario.get("preamble", "other"),
                         "client_bytes": client_bytes, "server_bytes": server_bytes}

    # SMTP, as tshark's SMTP dissector reads it.
    smtp = {}
    ehlo = None
    replies = []
    for f in fs:
        for cmd, par in zip(f.get("smtp.req.command", []), f.get("smtp.req.parameter", [""])):
            # tshark 4.0 takes a command's first four letters as the verb and
            # skips the fifth: STARTTLS shows as "STAR" with parameter "TLS".
            word = "STARTTLS" if (cmd.upper(), par.upper()) in (("STAR", "TLS"), ("STARTTLS", "")) else cmd.upper()
            if word in ("EHLO", "HELO"):
                ehlo = par
            if word == "STARTTLS":
                smtp["starttls"] = True
            replies.append(("cmd", word))
        codes = f.get("smtp.response.code", [])
        params = f.get("smtp.rsp.parameter", [])
        if codes:
            lines = ["%s%s%s" % (codes[0], "-" if i + 1 < len(params) else " ", p) for i, p in enumerate(params)]
            replies.append(("reply", "\n".join(lines)))
    c["smtp"] = None
    c["starttls"] = "none"
    if scenario.get("smtp") and replies:
        seen = {"banner": None, "ehlo": ehlo, "starttls_reply": None}
        pending = []
        for kind, text in replies:
            if kind == "cmd":
                pending.append(text)
            elif seen["banner"] is None:
                seen["banner"] = text  # an SMTP server's first reply is its greeting
            elif pending:
                cmd = pending.pop(0)
                if cmd == "STARTTLS":
                    seen["starttls_reply"] = text
        if seen["banner"] is not None or ehlo is not None:
            c["smtp"] = seen
        # STARTTLS only when it was sent, granted, and TLS followed it.
        granted = (seen["starttls_reply"] or "").startswith("2")
        if granted and tls_at is not None:
            c["starttls"] = "smtp"

    # TLS handshake messages, in order.
    hellos, server_hellos, retry, alerts = [], [], False, []
    certs = {"server": None, "client": None}
    ja3 = ja3s = None
    for f in fs:
        types = [int(t) for t in f.get("tls.handshake.type", [])]
        sslv2 = first(f, "tls.record.version") == "0x0002"
        raw = f.get("raw", {})
        if 1 in types and sslv2 and from_client(f) and not hellos:
            hellos.append({"sslv2": True, "specs": f.get("tls.handshake.cipherspec", []),
                           "version": int(first(f, "tls.handshake.version"), 0),
                           "bytes": int(first(f, "tls.record.length")) + 2})
        elif 1 in types and not sslv2:
            exts = f.get("tls.handshake.extension.type", [])
            siglen = int(first(f, "tls.handshake.sig_hash_alg_len", "0"))
            sni = raw.get("tls.handshake.extensions_server_name", [])
            h = {
                "record_version": first(f, "tls.record.version"),
                "version": int(first(f, "tls.handshake.version"), 0),
                "ciphers": [int(x, 0) for x in f.get("tls.handshake.ciphersuite", [])],
                "ext": exts,
                "sni": text_of(sni[0]) if sni else None,
                "alpn": [text_of(a) for a in raw.get("tls.handshake.extensions_alpn_str", [])],
                "alpn_bytes": raw.get("tls.handshake.extensions_alpn_str", []),
                "versions": [int(x, 0) for x in f.get("tls.handshake.extensions.supported_version", [])],
                "groups": f.get("tls.handshake.extensions_supported_group", []),
                "formats": f.get("tls.handshake.extensions_ec_point_format", []),
                "sigs": [int(x, 0) for x in f.get("tls.handshake.sig_hash_alg", [])][: siglen // 2],
                "shares": f.get("tls.handshake.extensions_key_share_group", []),
                "comp": f.get("tls.handshake.comp_method", []),
                "bytes": sum(int(x) + 5 for x in f.get("tls.record.length", [])[:1]),
                "ja3": first(f, "tls.handshake.ja3"),
                "ja3_full": first(f, "tls.handshake.ja3_full"),
            }
            hellos.append(h)
        if 4 in types and sslv2 and not from_client(f):
            # An SSLv2 SERVER-HELLO (SSLv2's message type 4).
            server_hellos.append({"sslv2": True, "specs": f.get("tls.handshake.cipherspec", [])})
        if 2 in types and not sslv2:
            random = first(f, "tls.handshake.random", "")
            if random.replace(":", "") == HRR_RANDOM:
                retry = True
            else:
                sv = f.get("tls.handshake.extensions.supported_version", [])
                legacy = int(first(f, "tls.handshake.version"), 0)
                alpn = raw.get("tls.handshake.extensions_alpn_str", [])
                server_hellos.append({
                    "legacy": legacy,
                    "selected": int(sv[0], 0) if sv else legacy,
                    "cipher": int(first(f, "tls.handshake.ciphersuite"), 0),
                    "ext": f.get("tls.handshake.extension.type", []),
                    "alpn": text_of(alpn[0]) if alpn else None,
                    "alpn_bytes": alpn[0] if alpn else b"",
                    "share": first(f, "tls.handshake.extensions_key_share_group"),
                    "comp": first(f, "tls.handshake.comp_method"),
                    "ja3s": first(f, "tls.handshake.ja3s"),
                    "ja3s_full": first(f, "tls.handshake.ja3s_full"),
                })
        if (11 in types and not sslv2) or (4 in types and sslv2 and not from_client(f)):
            who = "client" if from_client(f) else "server"
            got = certs[who] if certs[who] is not None else []
            for der in f.get("tls.handshake.certificate", []):
                got.append({"sha256": hashlib.sha256(bytes.fromhex(der.replace(":", ""))).hexdigest()})
            certs[who] = got
        for lvl, desc in zip(f.get("tls.alert_message.level", []), f.get("tls.alert_message.desc", [])):
            alerts.append({"from": "client" if from_client(f) else "server", "level": cp(lvl), "description": cp(desc)})
    for k in ("client_hello", "server_hello", "negotiated_version", "ja3", "ja3_string", "ja3s", "ja3s_string",
              "ja4", "ja4_r", "ja4s"):
        c[k] = None
    c["hello_retry_request"] = retry
    if hellos:
        h = hellos[0]
        if h.get("sslv2"):
            specs = [int(s, 0) for s in h["specs"]]
            c["client_hello"] = {
                "record_version": {"id": "0x0002"},
                "legacy_version": cp(hex(h["version"])),
                "supported_versions": [],
                "sslv2_format": True,
                "cipher_suites": [cp(hex(s)) for s in specs if s >> 16 == 0],
                "sslv2_cipher_specs": [{"id": "0x%06x" % s} for s in specs],
                "extensions": [],
                "sni": None,
                "alpn": [],
                "supported_groups": [],
                "ec_point_formats": [],
                "signature_algorithms": [],
                "key_share_groups": [],
                "compression_methods": [],
                "bytes": h["bytes"],
            }
        else:
            c["client_hello"] = {
                "record_version": cp(h["record_version"]),
                "legacy_version": cp(hex(h["version"])),
                "supported_versions": [cp(hex(v)) for v in h["versions"]],
                "cipher_suites": [cp(hex(x)) for x in h["ciphers"]],
                "sslv2_cipher_specs": None,
                "extensions": [cp(e) for e in h["ext"]],
                "sni": h["sni"],
                "alpn": h["alpn"],
                "supported_groups": [cp(g) for g in h["groups"]],
                "ec_point_formats": [cp(p) for p in h["formats"]],
                "signature_algorithms": [cp(hex(s)) for s in h["sigs"]],
                "key_share_groups": [cp(g) for g in h["shares"]],
                "compression_methods": [cp(m) for m in h["comp"]],
                "bytes": h["bytes"],
                "sslv2_format": False,
            }
            c["ja3"], c["ja3_string"] = h["ja3"], h["ja3_full"]
            c["ja4"], c["ja4_r"] = ja4(h)
        c["client_hellos"] = len(hellos)
    if server_hellos:
        sh = server_hellos[-1]
        if sh.get("sslv2"):
            c["server_hello"] = {
                "legacy_version": {"id": "0x0002"},
                "selected_version": {"id": "0x0002"},
                "cipher_suite": None,
                "sslv2_cipher_specs": [{"id": "0x%06x" % int(s, 0)} for s in sh["specs"]],
                "extensions": [],
                "alpn": None,
                "key_share_group": None,
                "compression": None,
            }
            c["negotiated_version"] = {"id": "0x0002"}
        else:
            c["server_hello"] = {
                "legacy_version": cp(hex(sh["legacy"])),
                "selected_version": cp(hex(sh["selected"])),
                "cipher_suite": cp(hex(sh["cipher"])),
                "sslv2_cipher_specs": None,
                "extensions": [cp(e) for e in sh["ext"]],
                "alpn": sh["alpn"],
                "key_share_group": cp(sh["share"]) if sh["share"] is not None else None,
                "compression": cp(sh["comp"]),
            }
            c["negotiated_version"] = cp(hex(sh["selected"]))
            c["ja3s"], c["ja3s_string"] = sh["ja3s"], sh["ja3s_full"]
            c["ja4s"] = ja4s(sh)
    c["alerts"] = alerts
    c["server_certificates"] = certs["server"]
    c["client_certificates"] = certs["client"]
    # The first FIN or RST.
    for f in fs:
        fin = first(f, "tcp.flags.fin") in ("1", "True")
        rst = first(f, "tcp.flags.reset") in ("1", "True")
        if fin or rst:
            c["ended"] = {"by": "client" if from_client(f) else "server", "how": "rst" if rst else "fin"}
            break
    else:
        c["ended"] = {"by": "capture-end", "how": "none"}
    outcome, kind = scenario["verdict"]
    c["verdict"] = {"outcome": outcome, "kind": kind}
    c["warnings"] = scenario.get("warnings", [])
    return c


def complete(c):
    """The keys in SPEC §3b's order."""
    order = ["client_ip", "client_port", "server_ip", "server_port", "started", "starttls", "preamble", "smtp",
             "client_hello", "client_hellos", "hello_retry_request", "server_hello", "negotiated_version", "alerts",
             "server_certificates", "client_certificates", "ja3", "ja3_string", "ja3s", "ja3s_string", "ja4",
             "ja4_r", "ja4s", "ended", "verdict", "warnings"]
    return {k: c[k] for k in order if k in c}


def main():
    names = sys.argv[1:] or sorted(SCENARIOS)
    here = os.path.dirname(os.path.abspath(__file__))
    for name in names:
        if not os.path.exists(os.path.join(here, name)):
            print("expect.py: %s: missing, skipped" % name, file=sys.stderr)
            continue
        e = expect_file(name, SCENARIOS[name])
        out = os.path.join(here, name.rsplit(".", 1)[0] + ".expected.json")
        with open(out, "w") as fh:
            json.dump(e, fh, indent=1)
            fh.write("\n")
        print("%s: %d connection(s)" % (out, len(e["connections"])))


if __name__ == "__main__":
    main()
