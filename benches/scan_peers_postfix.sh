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
. "$(dirname "$0")/lib.sh"
in_private_netns "$0" "$@"
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
        rsa_suites "$label" "$flag" "$cs"
    done | per_proto
    printf '  [%s]' "$cs"
}

start_postfix "$work" "$ADDR" "$PORT" "$work/certs"
echo "# $(uptime)"
echo "== Postfix $(postconf -c "$work/conf" -h mail_version) smtpd STARTTLS on $ADDR:$PORT"
echo "truth          $(truth_postfix)"
measure hsscan "$ADDR" "$PORT" "$HSSCAN" --starttls smtp --ehlo bench.example --enumerate --json "$ADDR:$PORT"
measure sslscan "$ADDR" "$PORT" sslscan --no-colour --starttls-smtp "$ADDR:$PORT"
measure nmap "$ADDR" "$PORT" nmap -Pn -n -p "$PORT" --script ssl-enum-ciphers "$ADDR"
measure sslyze "$ADDR" "$PORT" sslyze --starttls smtp "$ADDR:$PORT"
if [ "${1:-}" != "--no-testssl" ]; then
    # -n none: no PTR lookup of the target through the system resolver.
    measure testssl "$ADDR" "$PORT" testssl --quiet --color 0 -n none -t smtp -e "$ADDR:$PORT"
fi
