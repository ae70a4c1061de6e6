#!/usr/bin/env bash
# Bulk MX benchmark: HOSTS mail hosts (one `hsscan emulate` process
# listening on HOSTS loopback addresses 127.1.x.y:25, each answer delayed
# by --rtt RTT ms as a far network would) and DOMAINS domains pointing at
# them through dnsmasq (every domain one MX, every third a second one, so
# hosts are shared). Measures `hsscan --mx` over all of them: wall time,
# peak memory, connections per host, and the most connections any one
# address saw at once (must stay within --per-host). Loopback only, in a
# private network namespace.
# Usage: HOSTS=1000 DOMAINS=5000 RTT=20 J=256 bash benches/bulk_mx.sh
#   ENUM=--enumerate (default) or ENUM= for the quick check.
#   PEERS=1 adds five real Postfix smtpd (no latency) and times hsscan --mx,
#   sslyze and testssl.sh --file on them in the same run. (sslyze and
#   testssl.sh cannot scan the emulator: they
#   complete handshakes and give up on the emulator's key-exchange
#   signatures, which are filler: it never signs.)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
in_private_netns "$0" "$@"
cd "$(dirname "$0")/.."
HOSTS=${HOSTS:-1000} DOMAINS=${DOMAINS:-5000} RTT=${RTT:-20} J=${J:-256} PEERS=${PEERS:-0}
ENUM=${ENUM---enumerate}
HSSCAN=${HSSCAN:-target/release/hsscan}
[ -x "$HSSCAN" ] || { cargo build --release --quiet && HSSCAN=target/release/hsscan; }
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; if [ -n "${KEEP:-}" ]; then cp -r "$work" "$KEEP"; fi; rm -rf "$work"' EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
addr() { echo "127.1.$(($1 / 250)).$(($1 % 250 + 1))"; }

{
    printf 'port=53\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\nlocal=/bench.test/\n'
    for ((i = 0; i < HOSTS; i++)); do echo "host-record=mx$i.bench.test,$(addr "$i")"; done
    for ((d = 0; d < DOMAINS; d++)); do
        echo "mx-host=d$d.bench.test,mx$((d % HOSTS)).bench.test,10"
        if ((d % 3 == 0)); then echo "mx-host=d$d.bench.test,mx$(((d * 7 + 1) % HOSTS)).bench.test,20"; fi
    done
} >"$work/dnsmasq.conf"
dnsmasq --conf-file="$work/dnsmasq.conf" --keep-in-foreground --user=root --pid-file 2>"$work/dnsmasq.err" &
pids+=($!)
for ((d = 0; d < DOMAINS; d++)); do echo "d$d.bench.test"; done >"$work/domains.txt"

listen=()
for ((i = 0; i < HOSTS; i++)); do listen+=(--listen "$(addr "$i"):25"); done
"$HSSCAN" emulate --profile postfix-default --rtt "$RTT" --quiet "${listen[@]}" 2>"$work/emulator.err" &
emu=$!
pids+=($emu)
for _ in $(seq 100); do [ "$(grep -c 'hsscan emulate: profile' "$work/emulator.err" 2>/dev/null)" -ge "$HOSTS" ] && break; sleep 0.1; done

echo "== $HOSTS hosts, $DOMAINS domains, rtt $RTT ms, -j $J, ${ENUM:-quick check}; $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
/usr/bin/time -v "$HSSCAN" --mx -i "$work/domains.txt" --dns 127.0.0.1 --jsonl $ENUM -j "$J" -q \
    --ehlo bench.example >"$work/out.jsonl" 2>"$work/time.txt" || true
kill -TERM "$emu"; wait "$emu" 2>/dev/null || true
wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt")
rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
python3 - "$work/out.jsonl" "$wall" "$rss" "$(tail -1 "$work/emulator.err")" <<'PY'
import json, sys, statistics
path, wall, rss, emu = sys.argv[1:5]
ends, doms, bad = [], [], 0
for line in open(path):
    try:
        r = json.loads(line)
    except ValueError:
        bad += 1
        continue
    (ends if r["record"] == "endpoint" else doms).append(r)
conns = [e["connections"] for e in ends]
status = {}
for e in ends:
    status[e["status"]] = status.get(e["status"], 0) + 1
print(f"wall {wall}, peak RSS {int(rss) / 1024:.0f} MiB, {len(ends)} endpoint records, {len(doms)} domain records, {bad} bad lines")
print(f"endpoint status {status}")
if conns:
    print(f"connections: {sum(conns)} in all, per host mean {statistics.mean(conns):.1f}, max {max(conns)}")
print(f"emulator: {emu}")
PY

if [ "$PEERS" = 1 ]; then
    # The peers on a subset: five real Postfix smtpd (Debian defaults, the
    # test RSA chain) on 127.2.0.1-5:25, no latency, behind domains
    # p0-p4.bench.test in the same dnsmasq. sslyze and testssl.sh need real
    # servers: they complete the handshake.
    POSTFIX=$(command -v postfix || echo /usr/sbin/postfix)
    chmod 755 "$work"
    bash tests/support/mkcerts.sh "$work/certs" >/dev/null
    n=5
    for ((i = 0; i < n; i++)); do
        ip=127.2.0.$((i + 1))
        start_postfix "$work/pf$i" "$ip" 25 "$work/certs" "mxp$i.bench.test"
        echo "host-record=mxp$i.bench.test,$ip" >>"$work/dnsmasq.conf"
        echo "mx-host=p$i.bench.test,mxp$i.bench.test,10" >>"$work/dnsmasq.conf"
        echo "p$i.bench.test" >>"$work/peers.txt"
        echo "-t smtp -e -n none $ip:25" >>"$work/testssl.txt"
        ips+=("$ip:25")
    done
    trap 'for ((i = 0; i < 5; i++)); do "$POSTFIX" -c "$work/pf$i/conf" stop >/dev/null 2>&1 || true; done; for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; if [ -n "${KEEP:-}" ]; then cp -r "$work" "$KEEP"; fi; rm -rf "$work"' EXIT
    kill "${pids[0]}"; sleep 0.2
    dnsmasq --conf-file="$work/dnsmasq.conf" --keep-in-foreground --user=root --pid-file 2>>"$work/dnsmasq.err" &
    pids+=($!)
    sleep 0.5
    echo "== $n Postfix smtpd (STARTTLS, Debian defaults, no latency): hsscan --mx, sslyze, testssl.sh --file"
    t0=$(date +%s.%N)
    "$HSSCAN" --mx -i "$work/peers.txt" --dns 127.0.0.1 --jsonl $ENUM -j "$J" -q --ehlo bench.example >"$work/peers.jsonl" || true
    echo "hsscan   $(echo "$(date +%s.%N) - $t0" | bc) s, $(grep -c '"record":"endpoint".*"status":"negotiated"' "$work/peers.jsonl") of $n negotiated"
    if command -v sslyze >/dev/null; then
        t0=$(date +%s.%N)
        sslyze --starttls smtp "${ips[@]}" >"$work/sslyze.txt" 2>&1 || true
        echo "sslyze   $(echo "$(date +%s.%N) - $t0" | bc) s, $(grep -c '^ \* TLS 1.2 Cipher Suites' "$work/sslyze.txt") of $n servers scanned"
    fi
    if command -v testssl >/dev/null; then
        t0=$(date +%s.%N)
        testssl --quiet --color 0 --parallel --file "$work/testssl.txt" >"$work/testssl.out" 2>&1 || true
        echo "testssl  $(echo "$(date +%s.%N) - $t0" | bc) s (--parallel), $(grep -c "^ Done" "$work/testssl.out") of $n servers done"
    fi
fi
