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
# A private network namespace with only lo: nothing any tool does (testssl
# probes its openssl with `s_client -connect invalid.`, a DNS query) can
# leave the machine.
if [ -z "${SCAN_PEERS_NETNS:-}" ]; then
    exec unshare --net env SCAN_PEERS_NETNS=1 bash -c 'ip link set lo up && exec bash "$0" "$@"' "$0" "$@"
fi
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

# --- what each tool found: "TLSv1.2:20 TLSv1.3:3 (sum 23, distinct 23)" ---
per_proto() { # stdin: "PROTO ID" lines
    awk '{n[$1]++; d[$2] = 1; s++}
        END {split("SSLv2 SSLv3 TLSv1.0 TLSv1.1 TLSv1.2 TLSv1.3", o, " ")
             for (i = 1; i <= 6; i++) if (o[i] in n) printf "%s:%d ", o[i], n[o[i]]
             printf "(sum %d, distinct %d)", s, length(d)}'
}
found_hsscan() { # JSON record
    jq -r '.enumeration.ciphers | to_entries[] | .key as $p | .value[] | "\($p) \(.id)"' "$1" 2>/dev/null | per_proto
    jq -r '" | json connections \(.connections), groups \(.enumeration.groups | length), complete \(.enumeration.complete),"
        + " bound \(([.enumeration.ciphers[] | length] | add) + 6 + (.enumeration.groups | length) + 5)"' "$1" 2>/dev/null
}
found_sslscan() { awk '/^(Preferred|Accepted) /{print $2, $5}' "$1" | per_proto; }
found_nmap() {
    awk '/^\|   (SSLv|TLSv)[0-9.]+: *$/ {p=$2; sub(":", "", p)} /^\|       (TLS|SSL)_[A-Za-z0-9_]+ / {print p, $2}' "$1" | per_proto
}
found_sslyze() {
    awk '/^ \* (SSL|TLS) [0-9.]+ Cipher Suites:/ {p=($2=="SSL" ? "SSLv" : "TLSv") $3; sub(/\.0$/, "", p); if (p=="TLSv1") p="TLSv1.0"; if (p=="SSLv2.0"||p=="SSLv3.0") sub(/\.0$/, "", p); next}
         /^ \* / {p=""} p!="" && /^        TLS_|^        SSL_/ {print p, $1}' "$1" | sed 's/^SSLv2\.0/SSLv2/; s/^SSLv3\.0/SSLv3/' | per_proto
}
found_testssl() { # -e lists suites without protocol
    printf 'distinct %d' "$(grep -cE '^ x[0-9a-f]+ ' "$1" || true)"
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
        openssl ciphers "${prov[@]}" -v -V -s "$flag" "$cs" | awk -v p="$label" '{au=""; kx="";
            for (i = 1; i <= NF; i++) { if ($i ~ /^Au=/) au = substr($i, 4); if ($i ~ /^Kx=/) kx = substr($i, 4) }
            if ((au == "RSA" || au == "None" || au == "any") && kx !~ /PSK|SRP/) print p, $1}'
    done | per_proto
}

measure() { # label port command...
    local label=$1 port=$2; shift 2
    local load; load=$(cut -d' ' -f1 /proc/loadavg)
    tcpdump -i lo -n -q -l "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn and dst port $port" >"$work/syn" 2>"$work/syn.err" &
    local dump=$!
    # Wait until tcpdump captures (0.5 s was not always enough under load).
    for _ in $(seq 100); do grep -q 'listening on' "$work/syn.err" 2>/dev/null && break; sleep 0.05; done
    sleep 0.2
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >"$OUT/$label-$port.out" 2>&1 </dev/null || true
    t1=$(date +%s.%N)
    sleep 0.5
    kill "$dump" 2>/dev/null; wait "$dump" 2>/dev/null || true
    # Count packets, not lines: tcpdump ends its output with an empty line
    # when it is stopped, which `wc -l` counted as one more connection.
    printf '%-14s %-10s %7.2f s  %4d connections  load %s  found %s\n' "$label" "$port" "$(echo "$t1 - $t0" | bc)" \
        "$(grep -c ' > ' "$work/syn" || true)" "$load" "$("found_$label" "$OUT/$label-$port.out" | tr -d '\n')"
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
    measure hsscan "$port" "$HSSCAN" --enumerate --json "127.0.0.1:$port"
    measure sslscan "$port" sslscan --no-colour "127.0.0.1:$port"
    measure nmap "$port" nmap -Pn -n -p "$port" --script ssl-enum-ciphers 127.0.0.1
    measure sslyze "$port" sslyze "127.0.0.1:$port"
    if [ "${1:-}" != "--no-testssl" ]; then
        # -n none: no PTR lookup of the target through the system resolver.
        measure testssl "$port" testssl --quiet --color 0 -n none -e "127.0.0.1:$port"
    fi
done
