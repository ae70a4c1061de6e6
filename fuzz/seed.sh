#!/usr/bin/env bash
# Creates the seed corpora fuzz/corpus/<target>/ (gitignored) from the real
# bytes in wire/testdata/ and the committed regressions in fuzz/regressions/:
#
#   deframer       every server flight (*.bin) and every ClientHello record
#                  (*.hex), and SSLv2 CLIENT-HELLOs and a SERVER-HELLO
#   client_hello   every ClientHello handshake message (the record minus its 5-byte header)
#   server_flight  every server flight, and for each ServerKeyExchange the
#                  2-byte suite from the flight's ServerHello followed by the
#                  SKE body (the target's second input layout), and an
#                  SSLv2 SERVER-HELLO and ERROR; both also get ServerHellos
#                  and HelloRetryRequests of TLS 1.3 drafts (12, 18, 23,
#                  28) and streamed Certificates (declared over the
#                  buffering cap, cut after the real entries)
#   certificate    the body of every Certificate message (type 11) in the
#                  flights, which the target reads in the TLS 1.2 layout
#   pcap           every capture in pcaps/ and wire/testdata/flights/
#   smtp           SMTP server sides written here: banners, EHLO replies
#                  with and without STARTTLS, rejections, rate limits,
#                  continuation lines, a TLS record instead of a banner
#   tls13_flight   mode 0: the TLS 1.3 flights of wire/testdata/flights/
#                  and RFC 8448's ServerHello record; mode 1/3/5 (one per
#                  suite): RFC 8448's decrypted flight rebuilt from its
#                  Certificate message (EncryptedExtensions, Certificate,
#                  CertificateVerify, in one record, one per record, and
#                  with the Certificate cut across two records)
#   policy         mode 0/1/2: MTA-STS TXT, policy bodies, TLS-RPT TXT;
#                  mode 3: DNS responses with TXT and TLSA answers, the
#                  TLSA data hashed from the certificates in the flights,
#                  followed by that chain
#   maillog        the log lines quoted in src/maillog/ and tests/it/maillog.rs,
#                  one per file and all together, and a gzip of them
#
# Usage: fuzz/seed.sh            (from anywhere; needs python3, stdlib only)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
testdata="$here/../wire/testdata"
root="$here/.."

python3 - "$testdata" "$here" "$root" <<'PY'
import gzip, hashlib, os, pathlib, re, struct, sys

testdata, fuzz, root = (pathlib.Path(a) for a in sys.argv[1:4])
targets = ["deframer", "client_hello", "server_flight", "certificate",
           "pcap", "smtp", "tls13_flight", "policy", "maillog"]
corpus = {t: fuzz / "corpus" / t for t in targets}
for d in corpus.values():
    d.mkdir(parents=True, exist_ok=True)
counts = dict.fromkeys(targets, 0)

def put(target, name, data):
    (corpus[target] / name).write_bytes(data)
    counts[target] += 1

def handshake_messages(stream):
    """(type, body) of every plaintext handshake message in a record stream."""
    hs, i = b"", 0
    while i + 5 <= len(stream):
        typ, length = stream[i], int.from_bytes(stream[i + 3 : i + 5], "big")
        if typ == 22:
            hs += stream[i + 5 : i + 5 + length]
        i += 5 + length
    j = 0
    while j + 4 <= len(hs):
        n = int.from_bytes(hs[j + 1 : j + 4], "big")
        if j + 4 + n > len(hs):
            break
        yield hs[j], hs[j + 4 : j + 4 + n]
        j += 4 + n

for f in sorted((testdata / "clienthellos").glob("*.hex")):
    record = bytes.fromhex(re.sub(r"\s+", "", f.read_text()))
    assert record[0] == 22 and record[5] == 1, f
    put("deframer", f"ch-{f.stem}", record)
    put("client_hello", f.stem, record[5:])

for f in sorted((testdata / "flights").glob("*.bin")):
    flight = f.read_bytes()
    put("deframer", f"flight-{f.stem}", flight)
    put("server_flight", f.stem, flight)
    suite = None
    for k, (typ, body) in enumerate(handshake_messages(flight)):
        if typ == 2 and len(body) >= 35:
            sid = body[34]
            suite = body[35 + sid : 37 + sid]
        elif typ == 11:
            put("certificate", f"{f.stem}-{k}", body)
        elif typ == 12 and suite is not None:
            put("server_flight", f"{f.stem}-ske", suite + body)

# pcap: the captures themselves.
for f in sorted((root / "pcaps").glob("*.pcap*")) + sorted((testdata / "flights").glob("*.pcap")):
    put("pcap", f.name, f.read_bytes())

# smtp: what a server says, all of it at once.
ehlo = b"250-mx.example Hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
smtp = {
    "ok": b"220 mx.example ESMTP\r\n" + ehlo + b"220 2.0.0 Ready to start TLS\r\n",
    "ok-leftover": b"220 mx.example ESMTP\r\n" + ehlo + b"220 2.0.0 Go ahead\r\n\x16\x03\x01\x00\x05hello",
    "banner-multiline": b"220-mx.example ESMTP\r\n220-greetings\r\n220 ready\r\n" + ehlo + b"220 go\r\n",
    "lf-only": b"220 mx.example\n250-mx.example\n250 STARTTLS\n220 go\n",
    "no-starttls": b"220 mx.example ESMTP\r\n250-mx.example\r\n250 SIZE 1000\r\n221 2.0.0 Bye\r\n",
    "starttls-rejected": b"220 mx.example ESMTP\r\n" + ehlo + b"454 4.7.0 TLS not available due to local problem\r\n221 Bye\r\n",
    "rate-limit-banner": b"421 4.7.0 mx.example Too many connections, try later\r\n",
    "rejected-banner": b"554 5.7.1 No SMTP service here\r\n221 Bye\r\n",
    "ehlo-rejected": b"220 mx.example\r\n550 5.7.1 go away\r\n",
    "rate-limit-ehlo": b"220 mx.example\r\n450 4.7.0 rate limit exceeded\r\n",
    "mixed-codes": b"220-mx.example\r\n250 oops\r\n",
    "tls-record": b"\x16\x03\x03\x00\x31\x02\x00\x00\x2d\x03\x03" + bytes(40),
    "garbage-line": b"220 mx.example\r\nhello there\r\n",
    "binary": bytes(range(256)),
    "truncated": b"220 mx.example ESMTP\r\n250-mx.example\r\n250-STA",
    "utf8": "220 mx.exämple ESMTP \u2603\r\n250-mx\r\n250 STARTTLS\r\n220 \u00e9\r\n".encode(),
    "escape": b"220 mx\x1b[2J\x1b]0;title\x07 ESMTP\r\n250-mx\r\n250 STARTTLS\r\n220 go\r\n",
}
for name, data in smtp.items():
    put("smtp", name, data)

# tls13_flight, mode 0: plaintext server bytes.
for f in sorted((testdata / "flights").glob("openssl-tls13-*.bin")):
    put("tls13_flight", f"plain-{f.stem}", b"\0" + f.read_bytes())
tls13 = root / "src" / "tls13" / "testdata"
sh = (tls13 / "rfc8448_server_hello.bin").read_bytes()
sh_record = bytes([22, 3, 3]) + struct.pack(">H", len(sh)) + sh
put("tls13_flight", "plain-rfc8448-server-hello", b"\0" + sh_record)
put("tls13_flight", "plain-rfc8448-flight", b"\0" + sh_record + (tls13 / "rfc8448_server_flight_record.bin").read_bytes())
put("tls13_flight", "plain-alert", b"\0" + bytes([21, 3, 3, 0, 2, 2, 40]))
# Modes 1, 3, 5: inner plaintexts (message(s), content type 22, padding).
cert = (tls13 / "rfc8448_certificate.bin").read_bytes()
ee = bytes.fromhex("080000240022000a00140012001d00170018001901000101010201030104001c0002400100000000")
cv = bytes([15, 0, 0, 0x84, 8, 4, 0, 0x80]) + bytes(range(128))
fin = bytes([20, 0, 0, 32]) + bytes(32)
def inner(*records):
    return b"".join(struct.pack(">H", len(r)) + r for r in records)
for mode in (1, 3, 5):
    put("tls13_flight", f"enc{mode}-one-record", bytes([mode]) + inner(ee + cert + cv + fin + b"\x16"))
    put("tls13_flight", f"enc{mode}-per-message", bytes([mode]) + inner(ee + b"\x16", cert + b"\x16", cv + b"\x16\0\0\0"))
    half = len(cert) // 2
    put("tls13_flight", f"enc{mode}-split-cert", bytes([mode]) + inner(ee + cert[:half] + b"\x16", cert[half:] + cv + b"\x16"))
    put("tls13_flight", f"enc{mode}-certreq-finished", bytes([mode]) + inner(ee + bytes([13, 0, 0, 4, 0, 0, 0]) + fin + b"\x16"))
    put("tls13_flight", f"enc{mode}-alert", bytes([mode]) + inner(bytes([2, 40, 21])))

# policy, modes 0-2: the TXT and policy texts.
policy = {
    "txt": b"\0v=STSv1; id=20240309T000000;",
    "txt-bare": b"\0v=STSv1",
    "txt-other": b"\0v=spf1 -all",
    "body": b"\1version: STSv1\r\nmode: enforce\r\nmx: mx.example\r\nmx: *.backup.example\r\nmax_age: 604800\r\n",
    "body-testing": b"\1version: STSv1\nmode: testing\nmx: *.example\nmax_age: 86400\n",
    "body-none": b"\1version: STSv1\nmode: none\nmax_age: 0\n",
    "body-bad": b"\1version: STSv2\nmode: enforce\nmax_age: 99999999999\nmx\n",
    "rpt": b"\2v=TLSRPTv1; rua=mailto:tlsrpt@example,https://r.example/v1",
    "rpt-empty": b"\2v=TLSRPTv1;rua=;",
}
for name, data in policy.items():
    put("policy", name, data)

# policy, mode 3: DNS responses.
def name(n):
    return b"".join(bytes([len(l)]) + l.encode() for l in n.split(".")) + b"\0"
def response(rtype, rdatas, ad=True):
    q = "_25._tcp.mx.example" if rtype == 52 else "_mta-sts.example"
    out = struct.pack(">HHHHHH", 0x1234, 0x8180 | (0x20 if ad else 0), 1, len(rdatas), 0, 0)
    out += name(q) + struct.pack(">HH", rtype, 1)
    for rd in rdatas:
        out += b"\xc0\x0c" + struct.pack(">HHIH", rtype, 1, 300, len(rd)) + rd
    return out
def txt(*strings):
    return b"".join(bytes([len(s)]) + s for s in strings)
chains = []
for f in sorted((testdata / "flights").glob("*.bin")):
    for typ, body in handshake_messages(f.read_bytes()):
        if typ == 11 and len(body) > 3:
            certs, j = [], 3
            while j + 3 <= len(body):
                n = int.from_bytes(body[j : j + 3], "big")
                certs.append(body[j + 3 : j + 3 + n])
                j += 3 + n
            chains.append((f.stem, certs))
def dns_seed(msg, certs):
    return b"\3" + struct.pack(">H", len(msg)) + msg + b"".join(struct.pack(">H", len(c)) + c for c in certs)
for stem, certs in chains[:4]:
    leaf, last = certs[0], certs[-1]
    recs = [
        bytes([3, 0, 1]) + hashlib.sha256(leaf).digest(),
        bytes([3, 0, 2]) + hashlib.sha512(leaf).digest(),
        bytes([2, 0, 1]) + hashlib.sha256(last).digest(),
        bytes([3, 1, 1]) + bytes(32),
        bytes([1, 0, 0]) + leaf[:64],
    ]
    put("policy", f"tlsa-{stem}", dns_seed(response(52, recs), certs))
    put("policy", f"tlsa-insecure-{stem}", dns_seed(response(52, recs[:1], ad=False), certs[:1]))
put("policy", "dns-txt", dns_seed(response(16, [txt(b"v=STSv1; ", b"id=1"), txt(b"v=TLSRPTv1; rua=mailto:a@example")]), []))

# deframer and server_flight: SSLv2 (no flight in testdata has it).
def sslv2(body):
    return struct.pack(">H", 0x8000 | len(body)) + body
specs = bytes.fromhex("0700c0050080030080010080")
leaf = chains[0][1][0]
server_v2 = sslv2(bytes([4, 0, 1]) + struct.pack(">HHHH", 2, len(leaf), len(specs), 16) + leaf + specs + bytes(range(16)))
client_v2 = sslv2(bytes([1]) + struct.pack(">HHHH", 2, len(specs), 0, 16) + specs + bytes(range(16)))
compat_v2 = sslv2(bytes([1]) + struct.pack(">HHHH", 0x0301, 6, 0, 32) + bytes.fromhex("00002f000035") + bytes(32))
put("server_flight", "sslv2-server-hello", server_v2)
put("server_flight", "sslv2-error", sslv2(bytes([0, 0, 1])))
put("deframer", "sslv2-server-hello", server_v2)
put("deframer", "sslv2-client-hello", client_v2)
put("deframer", "sslv2-compatible-client-hello", compat_v2)

# deframer and server_flight: TLS 1.3 drafts and a streamed Certificate
# (one whose declared length is over the buffering cap, so that it is read
# entry by entry; the bytes stop after the real entries).
def records(hs, typ=22):
    return b"".join(bytes([typ, 3, 3]) + struct.pack(">H", len(hs[i : i + 16384])) + hs[i : i + 16384]
                    for i in range(0, len(hs), 16384))
def message(typ, body):
    return bytes([typ]) + len(body).to_bytes(3, "big") + body
tls13_sh = (testdata / "flights" / "openssl-tls13-server-hello.bin").read_bytes()
sv = bytes.fromhex("002b00020304")
for draft in (0x17, 0x1c):
    if sv in tls13_sh:
        d = tls13_sh.replace(sv, bytes.fromhex("002b00027f") + bytes([draft]), 1)
        for t in ("deframer", "server_flight"):
            put(t, f"draft{draft}-server-hello", d)
        put("tls13_flight", f"plain-draft{draft}-server-hello", b"\0" + d)
share = struct.pack(">HHH", 40, 36, 0x1d) + struct.pack(">H", 32) + bytes(range(32))
draft18 = message(2, bytes([0x7f, 0x12]) + bytes(range(32)) + b"\x13\x01" + struct.pack(">H", len(share)) + share)
hrr18 = message(6, bytes([0x7f, 0x12]) + struct.pack(">H", 6) + struct.pack(">HHH", 40, 2, 0x17))
hrr12 = message(6, bytes([0x7f, 0x0c]) + b"\x13\x01\x00\x17" + struct.pack(">H", 0))
for name, hs in [("draft18-server-hello", draft18), ("draft18-hrr", hrr18), ("draft12-hrr", hrr12)]:
    for t in ("deframer", "server_flight"):
        put(t, name, records(hs))
    put("tls13_flight", f"plain-{name}", b"\0" + records(hs))
for f in sorted((testdata / "flights").glob("*.bin")):
    msgs = list(handshake_messages(f.read_bytes()))
    sh12 = [b for typ, b in msgs if typ == 2]
    certs = [b for typ, b in msgs if typ == 11]
    if sh12 and certs and not f.stem.startswith("openssl-tls13"):
        big = 300 * 1024
        body = (big - 3).to_bytes(3, "big") + certs[0][3:]
        hs = message(2, sh12[0]) + bytes([11]) + big.to_bytes(3, "big") + body
        for t in ("deframer", "server_flight"):
            put(t, f"streamed-{f.stem}", records(hs))

# maillog: the quoted log lines, one per file and all together.
lines = []
for src in [root / "src" / "maillog" / "mod.rs", root / "tests" / "it" / "maillog.rs"]:
    for m in re.finditer(r'"((?:[A-Z][a-z]{2} [ \d]\d|\d{4}-\d\d-\d\dT)[^"\\]*(?:\\.[^"\\]*)*)"', src.read_text()):
        line = m.group(1).replace('\\"', '"')
        if "postfix" in line or "exim" in line or "=>" in line or "==" in line or "**" in line:
            lines.append(line)
relay = "mx1.lb.example[192.0.2.7]:25"
for stamp in ["Mar  9 10:00:01 mx", "2024-03-09T10:00:01.123456+01:00 mx"]:
    for pid, qid in [(4369, "3D75E9981CA"), (4370, "3E2C09980C8")]:
        lines += [
            f"{stamp} postfix/smtpd[4366]: {qid}: client=unknown[127.0.0.1]",
            f"{stamp} postfix/qmgr[4367]: {qid}: from=<a@example>, size=315, nrcpt=1 (queue active)",
            f"{stamp} postfix/smtp[{pid}]: SSL_connect error to {relay}: lost connection",
            f"{stamp} postfix/smtp[{pid}]: warning: TLS library problem: error:0A000410:SSL routines::sslv3 alert handshake failure:../ssl/record/rec_layer_s3.c:1601:SSL alert number 40:",
            f"{stamp} postfix/smtp[{pid}]: {qid}: to=<b@lb.example>, relay={relay}, delay=0.02, delays=0.01/0.02/0/0, dsn=4.7.5, status=deferred (Cannot start TLS: handshake failure)",
            f"{stamp} postfix/smtp[{pid + 10}]: Trusted TLS connection established to {relay}: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)",
            f"{stamp} postfix/smtp[{pid + 10}]: {qid}: to=<d@good.example>, relay={relay}, delay=0.1, delays=0.01/0/0.05/0.04, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4B1C2D3E4F)",
        ]
lines += ["this line is not from syslog", "Mar  9 10:00", "\x01\x02binary junk"]
for k, line in enumerate(lines):
    put("maillog", f"line-{k:03}", line.encode() + b"\n")
everything = "\n".join(lines).encode() + b"\n"
put("maillog", "all", everything)
put("maillog", "all-crlf", everything.replace(b"\n", b"\r\n"))
put("maillog", "all.gz", gzip.compress(everything, mtime=0))

# Committed crash inputs and minimised corpora start the search too.
for t in targets:
    reg = fuzz / "regressions" / t
    if reg.is_dir():
        for f in sorted(reg.iterdir()):
            if f.is_file():
                put(t, f"reg-{hashlib.sha1(f.read_bytes()).hexdigest()}", f.read_bytes())

for t in targets:
    print(f"{t}: {counts[t]} files in {os.path.relpath(corpus[t])}")
PY
