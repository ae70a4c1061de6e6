#!/usr/bin/env bash
# Scan benchmark over SMTP STARTTLS: hsscan against sslscan, nmap
# ssl-enum-ciphers, sslyze and testssl.sh on one throwaway Postfix smtpd at
# Debian's TLS defaults (smtpd_tls_security_level = may, the RSA test leaf
# and intermediate, every other TLS parameter at Postfix's default), in one
# run. For each tool: wall time and the TCP connections it opened (SYNs
# counted by tcpdump on lo), the suites it found, and the openssl truth.
# Loopback only: the whole run happens in a private network namespace.
# Usage: bash benches/scan_peers_postfix.sh [--no-testssl]
#   HSSCAN=path/to/hsscan   binary to measure (default target/release/hsscan)
#   OUT=dir                 keep every tool's output there
#   ADDR=127.0.0.2 PORT=25  where smtpd listens (25, 587: STARTTLS for all tools)
set -euo pipefail
# A private network namespace with only lo: nothing any tool does (testssl
# probes its openssl with `s_client -connect invalid.`, a DNS query) can
# leave the machine, and Postfix can bind port 25 beside a system instance.
if [ -z "${SCAN_PEERS_NETNS:-}" ]; then
    exec unshare --net env SCAN_PEERS_NETNS=1 bash -c 'ip link set lo up && exec bash "$0" "$@"' "$0" "$@"
fi
cd "${REPO:-$(dirname "$0")/..}"
HSSCAN=${HSSCAN:-target/release/hsscan}
[ -x "$HSSCAN" ] || { cargo build --release --quiet && HSSCAN=target/release/hsscan; }
ADDR=${ADDR:-127.0.0.2}
PORT=${PORT:-25}
POSTFIX=$(command -v postfix || echo /usr/sbin/postfix)
work=$(mktemp -d)
chmod 755 "$work" # the postfix user must traverse it to its queue and data
OUT=${OUT:-$work/out.d}
mkdir -p "$OUT"
trap '"$POSTFIX" -c "$work/conf" stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
bash tests/support/mkcerts.sh "$work/certs" >/dev/null

# Postfix as tests/it/postfix.rs runs it: own config, queue and data
# directories, one smtpd on ADDR:PORT, no delivery, no DNS, log to a file.
start_postfix() {
    mkdir -p "$work/conf" "$work/queue" "$work/data"
    chown postfix "$work/data"
    cat >"$work/conf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $work/queue
data_directory = $work/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = mx.test.example
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
notify_classes =
biff = no
smtpd_peername_lookup = no
maillog_file_prefixes = $work
maillog_file = $work/maillog
syslog_name = hsscan-bench-$ADDR-$PORT
smtpd_tls_cert_file = $work/certs/rsa-chain.pem
smtpd_tls_key_file = $work/certs/rsa.key
smtpd_tls_security_level = may
EOF
    cat >"$work/conf/master.cf" <<EOF
# service type private unpriv chroot wakeup maxproc command
$ADDR:$PORT inet n - n - - smtpd
anvil unix - - n - 1 anvil
tlsmgr unix - - n 1000? 1 tlsmgr
postlog unix-dgram n - n - 1 postlogd
EOF
    # Postfix keeps rereading a main.cf younger than a second or two.
    touch -d '-1 min' "$work/conf/main.cf" "$work/conf/master.cf"
    "$POSTFIX" -c "$work/conf" start >"$work/start.log" 2>&1 </dev/null ||
        { cat "$work/start.log" "$work/maillog" 2>/dev/null; exit 1; }
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
    awk '/^ \* (SSL|TLS) [0-9.]+ Cipher Suites:/ {p=($2=="SSL" ? "SSLv" : "TLSv") $3; sub(/\.0$/, "", p); if (p=="TLSv1") p="TLSv1.0"; next}
         /^ \* / {p=""} p!="" && /^        TLS_|^        SSL_/ {print p, $1}' "$1" | per_proto
}
found_testssl() { # -e lists suites without protocol
    printf 'distinct %d' "$(grep -cE '^ x[0-9a-f]+ ' "$1" || true)"
}

# The openssl truth: protocols that an `s_client -starttls smtp` handshake
# with the widest settings reaches, and for each the suites `openssl
# ciphers -V -v -s` lists for Postfix's cipher string (smtpd_tls_ciphers =
# medium: tls_medium_cipherlist) that an RSA certificate can serve, at
# security level 0: smtpd completes TLS 1.0/1.1 and anonymous (aNULL)
# handshakes, which OpenSSL 3.0 refuses at any higher level.
truth_postfix() {
    local cs flag label printed
    cs="$(postconf -c "$work/conf" -h tls_medium_cipherlist):@SECLEVEL=0"
    for v in "-tls1 TLSv1.0 TLSv1" "-tls1_1 TLSv1.1 TLSv1.1" "-tls1_2 TLSv1.2 TLSv1.2" "-tls1_3 TLSv1.3 TLSv1.3"; do
        read -r flag label printed <<<"$v"
        openssl s_client -connect "$ADDR:$PORT" -starttls smtp -name bench.example -brief "$flag" \
            -cipher 'ALL:@SECLEVEL=0' -provider legacy -provider default </dev/null 2>&1 |
            grep -qx "Protocol version: $printed" || continue
        openssl ciphers -v -V -s "$flag" "$cs" | awk -v p="$label" '{au=""; kx="";
            for (i = 1; i <= NF; i++) { if ($i ~ /^Au=/) au = substr($i, 4); if ($i ~ /^Kx=/) kx = substr($i, 4) }
            if ((au == "RSA" || au == "None" || au == "any") && kx !~ /PSK|SRP/) print p, $1}'
    done | per_proto
    printf '  [%s]' "$cs"
}

measure() { # label command...
    local label=$1; shift
    local load; load=$(cut -d' ' -f1 /proc/loadavg)
    tcpdump -i lo -n -q -l "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn and dst host $ADDR and dst port $PORT" \
        >"$work/syn" 2>"$work/syn.err" &
    local dump=$!
    for _ in $(seq 100); do grep -q 'listening on' "$work/syn.err" 2>/dev/null && break; sleep 0.05; done
    sleep 0.2
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >"$OUT/$label-postfix.out" 2>&1 </dev/null || true
    t1=$(date +%s.%N)
    sleep 0.5
    kill "$dump" 2>/dev/null; wait "$dump" 2>/dev/null || true
    # Count packets, not lines: tcpdump ends its output with an empty line
    # when it is stopped, which `wc -l` counted as one more connection.
    printf '%-14s %-16s %7.2f s  %4d connections  load %s  found %s\n' "$label" "$ADDR:$PORT" "$(echo "$t1 - $t0" | bc)" \
        "$(grep -c ' > ' "$work/syn" || true)" "$load" "$("found_$label" "$OUT/$label-postfix.out" | tr -d '\n')"
}

start_postfix
echo "# $(uptime)"
echo "== Postfix $(postconf -c "$work/conf" -h mail_version) smtpd STARTTLS on $ADDR:$PORT"
echo "truth          $(truth_postfix)"
measure hsscan "$HSSCAN" --starttls smtp --ehlo bench.example --enumerate --json "$ADDR:$PORT"
measure sslscan sslscan --no-colour --starttls-smtp "$ADDR:$PORT"
measure nmap nmap -Pn -n -p "$PORT" --script ssl-enum-ciphers "$ADDR"
measure sslyze sslyze --starttls smtp "$ADDR:$PORT"
if [ "${1:-}" != "--no-testssl" ]; then
    # -n none: no PTR lookup of the target through the system resolver.
    measure testssl testssl --quiet --color 0 -n none -t smtp -e "$ADDR:$PORT"
fi
