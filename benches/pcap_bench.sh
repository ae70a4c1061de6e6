#!/usr/bin/env bash
# benches/pcap_bench.sh [SIZE_MB] [TSHARK_MB] -- `hsscan pcap` throughput
# against tshark on a synthetic capture (benches/pcap_gen.py), figures in
# benches/pcap.md.
#
# Generates SIZE_MB (default 1100) and TSHARK_MB (default SIZE_MB) captures
# under $TMPDIR, warms the page cache, then times in one run:
#   hsscan pcap --json   and   hsscan pcap --brief      on each capture
#   tshark -r FILE -Y tls.handshake -T fields -e …      on the TSHARK_MB one
# with /usr/bin/time (wall clock, peak RSS). Needs a release build
# (cargo build --release), python3, tshark and GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-1100}
TSIZE=${2:-$SIZE}
HS=${HSSCAN:-target/release/hsscan}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT

python3 benches/pcap_gen.py "$DIR/big.pcap" "$SIZE" | tee "$DIR/gen.txt"
if [ "$TSIZE" != "$SIZE" ]; then
  python3 benches/pcap_gen.py "$DIR/small.pcap" "$TSIZE" | tee -a "$DIR/gen.txt"
  TFILE=$DIR/small.pcap
else
  TFILE=$DIR/big.pcap
fi
cat "$DIR"/*.pcap >/dev/null

run() { # LABEL FILE command…
  local label=$1 file=$2
  shift 2
  local mb conns
  mb=$(stat -c %s "$file")
  /usr/bin/time -f "%e %M" -o "$DIR/time" "$@" >"$DIR/out" 2>/dev/null
  read -r secs rss <"$DIR/time"
  conns=$(wc -l <"$DIR/out")
  awk -v l="$label" -v s="$secs" -v r="$rss" -v b="$mb" -v c="$conns" 'BEGIN {
    printf "%-34s %8.1f MB %7.2f s %8.1f MB/s %9d lines %9.0f lines/s %8.1f MB peak RSS\n",
      l, b / 1e6, s, b / 1e6 / s, c, c / s, r / 1024 }'
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
run "hsscan --json ($(basename "$TFILE"))" "$TFILE" "$HS" pcap --json "$TFILE"
run "hsscan --brief ($(basename "$TFILE"))" "$TFILE" "$HS" pcap --brief "$TFILE"
if [ "$TFILE" != "$DIR/big.pcap" ]; then
  run "hsscan --json (big.pcap)" "$DIR/big.pcap" "$HS" pcap --json "$DIR/big.pcap"
  run "hsscan --brief (big.pcap)" "$DIR/big.pcap" "$HS" pcap --brief "$DIR/big.pcap"
fi
run "tshark -Y tls.handshake ($(basename "$TFILE"))" "$TFILE" tshark -r "$TFILE" -Y tls.handshake -T fields \
  -e tcp.stream -e tls.handshake.type -e tls.handshake.ciphersuite -e tls.handshake.ja3 -e tls.handshake.ja3s
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
