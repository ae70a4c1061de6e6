#!/usr/bin/env bash
# Creates the seed corpora fuzz/corpus/<target>/ (gitignored) from the real
# bytes in wire/testdata/ and the committed regressions in fuzz/regressions/:
#
#   deframer       every server flight (*.bin) and every ClientHello record (*.hex)
#   client_hello   every ClientHello handshake message (the record minus its 5-byte header)
#   server_flight  every server flight, and for each ServerKeyExchange the
#                  2-byte suite from the flight's ServerHello followed by the
#                  SKE body (the target's second input layout)
#   certificate    the body of every Certificate message (type 11) in the
#                  flights, which the target reads in the TLS 1.2 layout
#
# Usage: fuzz/seed.sh            (from anywhere; needs python3, stdlib only)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
testdata="$here/../wire/testdata"

python3 - "$testdata" "$here" <<'PY'
import hashlib, os, pathlib, re, sys

testdata, fuzz = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
targets = ["deframer", "client_hello", "server_flight", "certificate"]
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
