#!/usr/bin/env bash
# capture.sh -- re-capture the server flights in this folder from real loopback sessions.
#
# Everything talks to 127.0.0.1:44331..44337 only. If `unshare -n` works (root), the
# whole script re-runs itself inside a fresh network namespace that has nothing but
# its own loopback interface, so even gnutls-serv (which binds the wildcard address)
# is unreachable from anywhere else.
#
# Steps: generate a test PKI into a temp dir (tests/support/mkcerts.sh), start tcpdump
# on lo with a port filter, run the 7 server/client pairs one after another (every
# process under `timeout`), stop tcpdump, then
#   python3 make_expected.py extract <pcap>   -> writes the *.bin files (cut with tshark)
#   python3 make_expected.py                  -> writes the *.expected.json files
# The raw capture is kept as capture.pcap next to this script.
#
# Usage: bash capture.sh            (needs openssl, gnutls-serv, gnutls-cli, tcpdump, tshark)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)

if [ -z "${HSSCAN_IN_NETNS:-}" ] && command -v unshare >/dev/null 2>&1 \
   && unshare -n true 2>/dev/null; then
  export HSSCAN_IN_NETNS=1
  exec unshare -n bash "$0" "$@"
fi
if [ -n "${HSSCAN_IN_NETNS:-}" ]; then
  ip link set lo up
fi

WORK=$(mktemp -d /tmp/hsscan-capture.XXXXXX)
PIDS=()
cleanup() {
  if [ -n "${KEEP_LOGS:-}" ]; then mkdir -p "$KEEP_LOGS"; cp "$WORK"/*.log "$WORK"/tcpdump.err "$KEEP_LOGS"/ 2>/dev/null || true; fi
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

PKI=$WORK/pki
bash "$ROOT/tests/support/mkcerts.sh" "$PKI"

# wait (max ~5 s) until something listens on port $1; polls ss rather than connecting,
# because a probe connection would show up in the capture
wait_listen() {
  for _ in $(seq 100); do
    if ss -ltnH "sport = :$1" 2>/dev/null | grep -q .; then return 0; fi
    sleep 0.05
  done
  echo "nothing listening on port $1" >&2; return 1
}

PCAP=$WORK/capture.pcap
timeout 120 tcpdump -i lo -U --immediate-mode -s 0 -w "$PCAP" 'tcp portrange 44331-44337' 2>"$WORK/tcpdump.err" &
TCPDUMP=$!
PIDS+=("$TCPDUMP")
for _ in $(seq 100); do grep -q listening "$WORK/tcpdump.err" 2>/dev/null && break; sleep 0.05; done

# run_openssl PORT "server args" "client args"
# s_server keeps stdin open (sleep pipe) and exits after one connection (-naccept 1);
# s_client gets EOF on stdin, so it closes right after the handshake.
run_openssl() {
  local port=$1 sargs=$2 cargs=$3
  (sleep 6 | timeout 10 openssl s_server -accept 127.0.0.1:"$port" -naccept 1 $sargs \
       >"$WORK/server-$port.log" 2>&1) &
  local sp=$!
  PIDS+=("$sp")
  wait_listen "$port"
  timeout 10 openssl s_client -connect 127.0.0.1:"$port" $cargs </dev/null \
       >"$WORK/client-$port.log" 2>&1 || true
  sleep 0.2
  kill "$sp" 2>/dev/null || true
  wait "$sp" 2>/dev/null || true
}

P=$PKI
# 1. TLS 1.2 ECDHE-RSA, leaf + intermediate + root in the Certificate message
run_openssl 44331 \
  "-tls1_2 -cert $P/rsa.pem -key $P/rsa.key -cert_chain $P/int-ca.pem" \
  "-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256 -status -servername localhost"
# 2. TLS 1.2 DHE-RSA (server DH params chosen automatically by OpenSSL 3)
run_openssl 44332 \
  "-tls1_2 -cert $P/rsa.pem -key $P/rsa.key -cert_chain $P/int-ca.pem" \
  "-tls1_2 -cipher DHE-RSA-AES128-GCM-SHA256 -servername localhost"
# 3. TLS 1.3 HelloRetryRequest: client key_share is X25519 only, server accepts only P-384
run_openssl 44333 \
  "-tls1_3 -groups P-384 -cert $P/rsa.pem -key $P/rsa.key" \
  "-tls1_3 -groups X25519:P-384 -servername localhost"
# 4. TLS 1.3 ServerHello (+ middlebox-compat change_cipher_spec)
run_openssl 44334 \
  "-tls1_3 -cert $P/rsa.pem -key $P/rsa.key" \
  "-tls1_3 -servername localhost"
# 5. gnutls-serv, ECDSA P-256 certificate, TLS 1.2 (gnutls-cli as client)
(timeout 10 gnutls-serv -p 44335 --x509certfile "$P/ecdsa-chain.pem" --x509keyfile "$P/ecdsa.key" \
     --priority 'NORMAL:-VERS-ALL:+VERS-TLS1.2' >"$WORK/server-44335.log" 2>&1) &
GS=$!
PIDS+=("$GS")
wait_listen 44335
timeout 10 gnutls-cli --priority 'NORMAL:-VERS-ALL:+VERS-TLS1.2' --no-ca-verification \
     --sni-hostname localhost -p 44335 127.0.0.1 </dev/null >"$WORK/client-44335.log" 2>&1 || true
sleep 0.2
kill "$GS" 2>/dev/null || true
wait "$GS" 2>/dev/null || true
# 6. no shared cipher -> fatal handshake_failure alert
run_openssl 44336 \
  "-tls1_2 -cipher AES256-SHA -cert $P/rsa.pem -key $P/rsa.key" \
  "-tls1_2 -cipher AES128-SHA"
# 7. TLS 1.0, static RSA key exchange
run_openssl 44337 \
  "-tls1 -cipher AES128-SHA:@SECLEVEL=0 -cert $P/rsa.pem -key $P/rsa.key -cert_chain $P/int.pem" \
  "-tls1 -cipher AES128-SHA:@SECLEVEL=0 -servername localhost"

sleep 1.5   # let tcpdump drain its ring buffer before SIGTERM
kill "$TCPDUMP" 2>/dev/null || true
wait "$TCPDUMP" 2>/dev/null || true

cp "$PCAP" "$HERE/capture.pcap"
python3 "$HERE/make_expected.py" extract "$HERE/capture.pcap"
python3 "$HERE/make_expected.py"
echo "capture done"
