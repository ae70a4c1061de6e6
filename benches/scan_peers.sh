#!/usr/bin/env bash
# Scan benchmark: hsscan against sslscan, nmap ssl-enum-ciphers, sslyze and
# testssl.sh on the same loopback servers, in one run. For each tool: wall
# time and the TCP connections it opened (SYNs counted by tcpdump on lo).
# Loopback only. Usage: bash benches/scan_peers.sh [--no-testssl]
set -euo pipefail
cd "$(dirname "$0")/.."
HSSCAN=${HSSCAN:-target/release/hsscan}
[ -x "$HSSCAN" ] || cargo build --release --quiet
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
bash tests/support/mkcerts.sh "$work" >/dev/null

start_server() { # name port args...
    local name=$1 port=$2; shift 2
    (sleep 100000 | openssl s_server -accept "127.0.0.1:$port" -cert "$work/rsa.pem" -key "$work/rsa.key" \
        -cert_chain "$work/int.pem" -quiet "$@" >"$work/$name.log" 2>&1) &
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
}

measure() { # label port command...
    local label=$1 port=$2; shift 2
    tcpdump -i lo -n -q -l "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn and dst port $port" >"$work/syn" 2>/dev/null &
    local dump=$!
    sleep 0.5
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >"$work/out" 2>&1 || true
    t1=$(date +%s.%N)
    sleep 0.5
    kill "$dump" 2>/dev/null; wait "$dump" 2>/dev/null || true
    printf '%-14s %-10s %7.2f s  %4d connections\n' "$label" "$port" "$(echo "$t1 - $t0" | bc)" "$(wc -l <"$work/syn")"
}

start_server defaults 4501
start_server legacy 4502 -min_protocol TLSv1 -cipher 'ALL:@SECLEVEL=0' -provider legacy -provider default
start_server serverpref 4503 -min_protocol TLSv1 -cipher 'ALL:@SECLEVEL=0' -serverpref -provider legacy -provider default

for port in 4501 4502 4503; do
    echo "== openssl s_server on 127.0.0.1:$port"
    measure hsscan "$port" "$HSSCAN" --enumerate --json "127.0.0.1:$port"
    measure sslscan "$port" sslscan --no-colour "127.0.0.1:$port"
    measure nmap "$port" nmap -Pn -n -p "$port" --script ssl-enum-ciphers 127.0.0.1
    measure sslyze "$port" sslyze "127.0.0.1:$port"
    if [ "${1:-}" != "--no-testssl" ]; then
        measure testssl "$port" testssl --quiet --color 0 -e "127.0.0.1:$port"
    fi
done
