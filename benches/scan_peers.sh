#!/usr/bin/env bash
# Scan benchmark: hsscan against sslscan, nmap ssl-enum-ciphers, sslyze and
# testssl.sh on the same loopback servers, in one run. For each tool: wall
# time and the TCP connections it opened (SYNs counted by tcpdump on lo).
# Loopback only. Usage: bash benches/scan_peers.sh [--no-testssl]
#
# Runs in a private network namespace with only lo (unshare --net), servers
# in their own process group killed at exit, testssl without PTR lookups,
# tcpdump waited for; keeps each tool's output in $OUT and prints the
# 1-minute load, the suites each tool found (needs jq) and the openssl truth.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
in_private_netns "$0" "$@"
cd "${REPO:-$(dirname "$0")/..}"
HSSCAN=${HSSCAN:-target/release/hsscan}
[ -x "$HSSCAN" ] || { cargo build --release --quiet && HSSCAN=target/release/hsscan; }
work=$(mktemp -d)
OUT=${OUT:-$work/out.d}
mkdir -p "$OUT"
pgids=()
trap 'for g in "${pgids[@]}"; do kill -- "-$g" 2>/dev/null; done; rm -rf "$work"' EXIT
bash tests/support/mkcerts.sh "$work" >/dev/null

start_server() { # name port args...
    local name=$1 port=$2; shift 2
    # setsid: its own process group, so the exit trap ends openssl and the
    # `sleep` feeding its stdin (killing the job's subshell left both running).
    setsid bash -c 'sleep 100000 | openssl "$@"' _ s_server -accept "127.0.0.1:$port" \
        -cert "$work/rsa.pem" -key "$work/rsa.key" -cert_chain "$work/int.pem" -quiet "$@" \
        >"$work/$name.log" 2>&1 </dev/null &
    pgids+=($!)
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
}

# The openssl truth: protocols that an `s_client` handshake with the widest
# settings reaches, and for each the suites `openssl ciphers -V -v -s`
# lists for the server's cipher string that an RSA certificate can serve.
truth_openssl() { # port cipherstring [provider args] [-- s_client extra args]
    local port=$1 cs=$2; shift 2
    local prov=() extra=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do prov+=("$1"); shift; done
    [ $# -gt 0 ] && shift && extra=("$@")
    local flag label printed
    for v in "-tls1 TLSv1.0 TLSv1" "-tls1_1 TLSv1.1 TLSv1.1" "-tls1_2 TLSv1.2 TLSv1.2" "-tls1_3 TLSv1.3 TLSv1.3"; do
        read -r flag label printed <<<"$v"
        openssl s_client -connect "127.0.0.1:$port" "${extra[@]}" -brief "$flag" -cipher 'ALL:@SECLEVEL=0' \
            -provider legacy -provider default </dev/null 2>&1 | grep -qx "Protocol version: $printed" || continue
        rsa_suites "$label" "$flag" "$cs" "${prov[@]}"
    done | per_proto
}

start_server defaults 4501
start_server legacy 4502 -min_protocol TLSv1 -cipher 'ALL:@SECLEVEL=0' -provider legacy -provider default
start_server serverpref 4503 -min_protocol TLSv1 -cipher 'ALL:@SECLEVEL=0' -serverpref -provider legacy -provider default

echo "# $(uptime)"
for port in 4501 4502 4503; do
    echo "== openssl s_server on 127.0.0.1:$port"
    case $port in
        4501) echo "truth          $(truth_openssl "$port" DEFAULT)" ;;
        *) echo "truth          $(truth_openssl "$port" 'ALL:@SECLEVEL=0' -provider legacy -provider default)" ;;
    esac
    measure hsscan 127.0.0.1 "$port" "$HSSCAN" --enumerate --json "127.0.0.1:$port"
    measure sslscan 127.0.0.1 "$port" sslscan --no-colour "127.0.0.1:$port"
    measure nmap 127.0.0.1 "$port" nmap -Pn -n -p "$port" --script ssl-enum-ciphers 127.0.0.1
    measure sslyze 127.0.0.1 "$port" sslyze "127.0.0.1:$port"
    if [ "${1:-}" != "--no-testssl" ]; then
        # -n none: no PTR lookup of the target through the system resolver.
        measure testssl 127.0.0.1 "$port" testssl --quiet --color 0 -n none -e "127.0.0.1:$port"
    fi
done
