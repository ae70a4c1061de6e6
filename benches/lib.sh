# Shared by the benchmark scripts (sourced, not run). Loopback only.

# Re-runs the calling script in a private network namespace that has only
# lo: nothing any tool does (testssl probes its openssl with
# `s_client -connect invalid.`, a DNS query) can leave the machine, and
# servers may bind port 25 beside a system instance.
# Usage, first thing in a script: in_private_netns "$0" "$@"
in_private_netns() {
    if [ -z "${BENCH_NETNS:-}" ]; then
        exec unshare --net env BENCH_NETNS=1 bash -c 'ip link set lo up && exec bash "$0" "$@"' "$@"
    fi
}

# A throwaway Postfix smtpd as tests/it/postfix.rs runs it: own config,
# queue and data directories under DIR, one smtpd on ADDR:PORT with the
# test RSA chain of CERTS, no delivery, no DNS, log to DIR/maillog.
# Usage: start_postfix DIR ADDR PORT CERTS [MYHOSTNAME]; stop with
# `postfix -c DIR/conf stop`.
start_postfix() {
    local dir=$1 addr=$2 port=$3 certs=$4 name=${5:-mx.test.example}
    local postfix; postfix=$(command -v postfix || echo /usr/sbin/postfix)
    mkdir -p "$dir/conf" "$dir/queue" "$dir/data"
    chmod 755 "$dir" # the postfix user must reach its queue and data
    chown postfix "$dir/data"
    cat >"$dir/conf/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = $name
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
notify_classes =
biff = no
smtpd_peername_lookup = no
maillog_file_prefixes = $dir
maillog_file = $dir/maillog
syslog_name = hsscan-bench-$addr-$port
smtpd_tls_cert_file = $certs/rsa-chain.pem
smtpd_tls_key_file = $certs/rsa.key
smtpd_tls_security_level = may
CF
    printf '%s:%s inet n - n - - smtpd\nanvil unix - - n - 1 anvil\ntlsmgr unix - - n 1000? 1 tlsmgr\npostlog unix-dgram n - n - 1 postlogd\n' \
        "$addr" "$port" >"$dir/conf/master.cf"
    # Postfix keeps rereading a main.cf younger than a second or two.
    touch -d '-1 min' "$dir/conf/main.cf" "$dir/conf/master.cf"
    "$postfix" -c "$dir/conf" start >"$dir/start.log" 2>&1 </dev/null ||
        { cat "$dir/start.log" "$dir/maillog" 2>/dev/null; return 1; }
}

# --- what each tool found: "TLSv1.2:20 TLSv1.3:3 (sum 23, distinct 23)" ---
per_proto() { # stdin: "PROTO ID" lines
    awk '{n[$1]++; d[$2] = 1; s++}
        END {split("SSLv2 SSLv3 TLSv1.0 TLSv1.1 TLSv1.2 TLSv1.3", o, " ")
             for (i = 1; i <= 6; i++) if (o[i] in n) printf "%s:%d ", o[i], n[o[i]]
             printf "(sum %d, distinct %d)", s, length(d)}'
}
found_hsscan() { # JSON record (needs jq)
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

# Suites `openssl ciphers -v -V -s FLAG CIPHERS` lists that an RSA
# certificate can serve, as "LABEL ID" lines. Usage: rsa_suites LABEL FLAG CIPHERS [provider args]
rsa_suites() {
    local label=$1 flag=$2 cs=$3; shift 3
    openssl ciphers "$@" -v -V -s "$flag" "$cs" | awk -v p="$label" '{au=""; kx="";
        for (i = 1; i <= NF; i++) { if ($i ~ /^Au=/) au = substr($i, 4); if ($i ~ /^Kx=/) kx = substr($i, 4) }
        if ((au == "RSA" || au == "None" || au == "any") && kx !~ /PSK|SRP/) print p, $1}'
}

# Runs a tool against ADDR:PORT and prints its wall time, the connections
# it opened (SYNs seen by tcpdump on lo), the 1-minute load and what it
# found (found_LABEL on its output, kept in $OUT). Needs $work and $OUT.
# Usage: measure LABEL ADDR PORT command...
measure() {
    local label=$1 addr=$2 port=$3; shift 3
    local load; load=$(cut -d' ' -f1 /proc/loadavg)
    local out="$OUT/$label-$addr-$port.out"
    tcpdump -i lo -n -q -l "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn and dst host $addr and dst port $port" \
        >"$work/syn" 2>"$work/syn.err" &
    local dump=$!
    # Wait until tcpdump captures (0.5 s was not always enough under load).
    for _ in $(seq 100); do grep -q 'listening on' "$work/syn.err" 2>/dev/null && break; sleep 0.05; done
    sleep 0.2
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >"$out" 2>&1 </dev/null || true
    t1=$(date +%s.%N)
    sleep 0.5
    kill "$dump" 2>/dev/null; wait "$dump" 2>/dev/null || true
    # Count packets, not lines: tcpdump ends its output with an empty line
    # when it is stopped, which `wc -l` counted as one more connection.
    printf '%-9s %-16s %7.2f s  %4d connections  load %s  found %s\n' "$label" "$addr:$port" "$(echo "$t1 - $t0" | bc)" \
        "$(grep -c ' > ' "$work/syn" || true)" "$load" "$("found_$label" "$out" | tr -d '\n')"
}
