#!/usr/bin/env bash
# Latency bench: hsscan --enumerate (at several --per-host) and its quick
# check against nmap ssl-enum-ciphers, sslscan, sslyze and testssl.sh, on a
# throwaway Postfix smtpd (STARTTLS), openssl s_server and gnutls-serv at
# their defaults, each behind a userspace delay proxy (rtt_proxy.py) that
# adds 0, 20 or 80 ms per round trip and counts connections. All in one
# run, inside a private network namespace that has only lo: nothing any
# tool does (testssl.sh queries DNS at start-up) can leave the machine.
#
# Usage: bash benches/latency/run.sh [--delays 0,20,80] [--targets postfix,openssl,gnutls[,openssl-wide]]
#            [--tools hsscan,quick,nmap,sslscan,sslyze,testssl] [--per-host 1,2,4]
#            [--out DIR] [--hsscan PATH | --build] [--tool-timeout SECS]
# Tools: bash benches/latency/setup.sh installs them. hsscan: the release
# build (built here when target/release/hsscan is missing, or with --build).
# Writes DIR/results.json, DIR/table.md and every tool's output in DIR/raw/
# (default DIR: target/latency-bench/<UTC time>).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
args=() out= build= hsscan=
while [ $# -gt 0 ]; do
    case $1 in
        --out) out=$2; shift 2 ;;
        --build) build=1; shift ;;
        --hsscan) hsscan=$2; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; python3 "$here/bench.py" --help; exit 0 ;;
        *) args+=("$1"); shift ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (ip netns add, Postfix)" >&2; exit 2; }
if [ -z "$hsscan" ]; then
    hsscan=$repo/target/release/hsscan
    if [ -n "$build" ] || [ ! -x "$hsscan" ]; then
        (cd "$repo" && nice -n 10 cargo build --release --quiet)
    fi
fi
out=${out:-$repo/target/latency-bench/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
ns=hsscan-lat-$$
ip netns add "$ns"
trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
ip netns exec "$ns" ip link set lo up
echo "run.sh: network namespace $ns: $(ip netns exec "$ns" ip -o link show | awk -F': ' '{printf "%s ", $2}')" >&2
ip netns exec "$ns" python3 "$here/bench.py" --hsscan "$hsscan" --out "$out" "${args[@]}"
echo "run.sh: results in $out/results.json and $out/table.md" >&2
