#!/usr/bin/env bash
# pcaps/make.sh [NAME...] -- remake the captures of this folder (all, or the
# named ones), then their expectations (pcaps/expect.py, from tshark).
#
# Everything runs on loopback: real peers (openssl s_client/s_server,
# gnutls-cli, `hsscan emulate`, small python clients) on 127.0.0.1, captured
# with tcpdump on `lo`. Needs root (tcpdump), openssl, gnutls-bin, tshark
# (for editcap, dumpcap and the expectations), python3, and a built hsscan
# (`cargo build`; override with HSSCAN=path). The captures differ on every
# run (randoms, ports, times); expectations are regenerated with them.
set -euo pipefail
cd "$(dirname "$0")"
HS=${HSSCAN:-$(cd .. && pwd)/target/debug/hsscan}
[ -x "$HS" ] || { echo "make.sh: build hsscan first (cargo build), or set HSSCAN" >&2; exit 2; }
WORK=$(mktemp -d)
CERTS=$WORK/certs
bash ../tests/support/mkcerts.sh "$CERTS" >/dev/null
PIDS=""

cleanup() {
  for p in $PIDS; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_capture FILE PORT [tcpdump options…]
start_capture() {
  local out=$1 p=$2
  shift 2
  tcpdump -i lo --immediate-mode -U -s 0 "$@" -w "$out" "tcp port $p" 2>"$WORK/tcpdump.log" &
  CAP=$!
  sleep 1
}

stop_capture() {
  sleep 0.5
  [ -z "${DEBUG:-}" ] || date +%s.%N
  kill -INT "$CAP" 2>/dev/null || true
  wait "$CAP" 2>/dev/null || true
}

# Background a server and remember its pid.
bg() {
  "$@" >>"$WORK/servers.log" 2>&1 &
  PIDS="$PIDS $!"
  LAST=$!
}

stop_last() {
  kill "$LAST" 2>/dev/null || true
  wait "$LAST" 2>/dev/null || true
}

s_server() { # PORT [options…]
  local p=$1
  shift
  bg openssl s_server -accept "127.0.0.1:$p" -cert "$CERTS/rsa.pem" -key "$CERTS/rsa.key" \
    -cert_chain "$CERTS/int.pem" -quiet -naccept 1 "$@"
  sleep 0.5
}

s_client() { # PORT [options…]
  local p=$1
  shift
  local t0=$SECONDS
  echo Q | timeout 10 openssl s_client -connect "127.0.0.1:$p" "$@" >>"$WORK/clients.log" 2>&1 || true
  [ -z "${DEBUG:-}" ] || { echo "s_client took $((SECONDS - t0)) s"; tail -3 "$WORK/clients.log"; }
}

emulator() { # PORT emulate-options…
  local p=$1
  shift
  : >"$WORK/emu.log"
  "$HS" emulate "$@" --listen "127.0.0.1:$p" >"$WORK/emu.log" 2>&1 &
  PIDS="$PIDS $!"
  LAST=$!
  for _ in $(seq 100); do grep -q "hsscan emulate: profile" "$WORK/emu.log" && break; sleep 0.05; done
}

capture() { # NAME: runs make_NAME between start and stop of a capture
  local name=$1 p
  p=$(free_port)
  echo "== $name (port $p)"
  "make_$name" "$p"
}

make_tls13() {
  start_capture tls13.pcap "$1"
  s_server "$1"
  s_client "$1" -servername mx.test.example -tls1_3
  stop_capture
  stop_last
}

make_tls12() {
  start_capture tls12.pcap "$1"
  s_server "$1" -alpn smtp
  s_client "$1" -servername mx.test.example -tls1_2 -alpn smtp,h2
  stop_capture
  stop_last
}

make_tls10() {
  start_capture tls10.pcap "$1"
  s_server "$1" -tls1 -cipher 'DEFAULT:@SECLEVEL=0'
  s_client "$1" -tls1 -cipher 'DEFAULT:@SECLEVEL=0'
  stop_capture
  stop_last
}

make_starttls() {
  start_capture starttls.pcap "$1"
  emulator "$1" --profile postfix-default --exit-after 1
  s_client "$1" -starttls smtp -name client.test.example -servername mx.emulated.test
  stop_capture
  stop_last
}

make_gnutls() {
  start_capture gnutls.pcap "$1"
  s_server "$1"
  timeout 10 gnutls-cli --insecure --port "$1" --sni-hostname mx.test.example 127.0.0.1 </dev/null \
    >>"$WORK/clients.log" 2>&1 || true
  stop_capture
  stop_last
}

make_implicit_to_starttls() {
  start_capture implicit-to-starttls.pcap "$1"
  emulator "$1" --profile postfix-default --exit-after 1
  s_client "$1" -servername mx.emulated.test
  stop_capture
  stop_last
}

make_ehlo_to_tls() {
  start_capture ehlo-to-tls.pcap "$1"
  s_server "$1"
  python3 - "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"EHLO client.test.example\r\n")
s.settimeout(5)
try:
    s.recv(1024)
except OSError:
    pass
s.close()
PY
  stop_capture
  stop_last
}

make_no_shared_cipher() {
  start_capture no-shared-cipher.pcap "$1"
  s_server "$1" -tls1_2 -cipher AES256-SHA
  s_client "$1" -tls1_2 -cipher AES128-SHA
  stop_capture
  stop_last
}

make_lb_drop() {
  start_capture lb-drop.pcap "$1"
  emulator "$1" --profile lb-drop-after-hello --exit-after 1
  s_client "$1" -starttls smtp -name client.test.example -tls1_2
  stop_capture
  stop_last
}

make_reset() {
  sed -e 's/^after_hello = "close"/after_hello = "reset"/' ../src/emulate/profiles/lb-drop-after-hello.toml \
    >"$WORK/reset.toml"
  start_capture reset.pcap "$1"
  emulator "$1" --config "$WORK/reset.toml" --exit-after 1
  s_client "$1" -starttls smtp -name client.test.example -tls1_2
  stop_capture
  stop_last
}

make_postfix_hello_512() {
  # Postfix's own TLS engine (posttls-finger at may, Postfix 3.7 on OpenSSL
  # 3.0) against a receiver that resets hellos over 512 bytes on the wire:
  # Postfix's 517-byte hello is dropped (hello-length intolerance).
  { cat ../src/emulate/profiles/postfix-default.toml
    printf '\n[misbehave]\nmax_hello_bytes = 512\nintolerance = "reset"\n'; } >"$WORK/hello512.toml"
  mkdir -p "$WORK/pf"
  printf 'compatibility_level = 3.6\nmyhostname = client.test.example\n' >"$WORK/pf/main.cf"
  start_capture postfix-hello-512.pcap "$1"
  emulator "$1" --config "$WORK/hello512.toml" --exit-after 1
  MAIL_CONFIG=$WORK/pf posttls-finger -c -l may -a ipv4 -h native -o dnssec_probe= -t 5 "[127.0.0.1]:$1" \
    >>"$WORK/servers.log" 2>&1 || true
  stop_capture
  stop_last
}

make_starttls_rejected() {
  sed -e 's/^starttls = "offer"/starttls = "reject"/' ../src/emulate/profiles/postfix-default.toml \
    >"$WORK/reject.toml"
  start_capture starttls-rejected.pcap "$1"
  emulator "$1" --config "$WORK/reject.toml" --exit-after 1
  s_client "$1" -starttls smtp -name client.test.example
  stop_capture
  stop_last
}

make_sslv2() {
  start_capture sslv2.pcap "$1"
  emulator "$1" --profile sslv2 --front tls --exit-after 1
  # An SSLv2 CLIENT-HELLO (version 0x0002, three SSLv2 cipher specs and two
  # TLS suites as 0x00XXYY specs, a 16-byte challenge), then read the answer.
  python3 - "$1" <<'PY'
import socket, sys, struct
specs = bytes.fromhex("0700c0" "050080" "010080" "00002f" "00000a")
challenge = bytes(range(16))
body = bytes([1]) + struct.pack(">HHHH", 2, len(specs), 0, len(challenge)) + specs + challenge
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(struct.pack(">H", 0x8000 | len(body)) + body)
s.settimeout(5)
try:
    s.recv(65536)
except OSError:
    pass
s.close()
PY
  stop_capture
  stop_last
}

make_hrr() {
  start_capture hrr.pcap "$1"
  s_server "$1" -groups X25519
  s_client "$1" -servername mx.test.example -tls1_3 -groups P-384:X25519
  stop_capture
  stop_last
}

make_split_hello() {
  # s_client -> python proxy (first client write split in 3 segments, 50 ms
  # apart) -> s_server; the capture sees the proxy-server leg only.
  local up
  up=$(free_port)
  start_capture split-hello.pcap "$up"
  s_server "$up"
  python3 - "$1" "$up" <<'PY' &
import socket, sys, threading, time
lp, up = int(sys.argv[1]), int(sys.argv[2])
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", lp)); ls.listen(1); ls.settimeout(10)
c, _ = ls.accept()
s = socket.create_connection(("127.0.0.1", up))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
def pump(a, b, split):
    first = split
    while True:
        try:
            d = a.recv(65536)
        except OSError:
            break
        if not d:
            break
        if first:
            first = False
            n = len(d) // 3
            for part in (d[:n], d[n:2 * n], d[2 * n:]):
                b.sendall(part); time.sleep(0.05)
        else:
            b.sendall(d)
    try:
        b.shutdown(socket.SHUT_WR)
    except OSError:
        pass
t = threading.Thread(target=pump, args=(s, c, False)); t.start()
pump(c, s, True); t.join(); s.close(); c.close()
PY
  PROXY=$!
  sleep 0.5
  s_client "$1" -servername mx.test.example -tls1_3
  wait "$PROXY" 2>/dev/null || true
  stop_capture
  stop_last
}

make_grease() {
  # A ClientHello with GREASE (RFC 8701) in the suites, extensions, groups,
  # versions and key shares, ALPN h2 and http/1.1, as browsers send them,
  # written by python to s_server; the client reads the answer and closes.
  start_capture grease.pcap "$1"
  s_server "$1" -tls1_3
  python3 - "$1" <<'PY'
import os, socket, struct, sys
def u16(n): return struct.pack(">H", n)
def vec16(b): return u16(len(b)) + b
def vec8(b): return bytes([len(b)]) + b
def ext(t, body): return u16(t) + vec16(body)
suites = [0x4a4a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035]
exts = b"".join([
    ext(0xaaaa, b""),
    ext(0x0000, vec16(b"\0" + vec16(b"mx.test.example"))),
    ext(0x0017, b""),
    ext(0xff01, b"\0"),
    ext(0x000a, vec16(b"".join(u16(g) for g in (0x2a2a, 0x001d, 0x0017, 0x0018)))),
    ext(0x000b, vec8(b"\0")),
    ext(0x0023, b""),
    ext(0x0010, vec16(vec8(b"h2") + vec8(b"http/1.1"))),
    ext(0x0005, b"\1\0\0\0\0"),
    ext(0x000d, vec16(b"".join(u16(s) for s in (0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601)))),
    ext(0x0012, b""),
    ext(0x0033, vec16(u16(0x2a2a) + vec16(b"\0") + u16(0x001d) + vec16(os.urandom(32)))),
    ext(0x002d, vec8(b"\1")),
    ext(0x002b, vec8(b"".join(u16(v) for v in (0x6a6a, 0x0304, 0x0303)))),
    ext(0x001b, vec8(u16(2))[:1] + u16(2)),
    ext(0x1a1a, b"\0"),
])
body = u16(0x0303) + os.urandom(32) + vec8(os.urandom(32)) + vec16(b"".join(u16(c) for c in suites)) + vec8(b"\0") + vec16(exts)
hs = b"\1" + struct.pack(">I", len(body))[1:] + body
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"\x16\x03\x01" + vec16(hs))
s.settimeout(5)
try:
    s.recv(65536)
except OSError:
    pass
s.close()
PY
  stop_capture
  stop_last
}

make_client_rejects_tls12() {
  start_capture client-rejects-tls12.pcap "$1"
  s_server "$1" -tls1_2
  s_client "$1" -tls1_2 -verify_return_error -servername mx.test.example
  stop_capture
  stop_last
}

make_client_rejects_tls13() {
  start_capture client-rejects-tls13.pcap "$1"
  s_server "$1" -tls1_3
  s_client "$1" -tls1_3 -verify_return_error -servername mx.test.example
  stop_capture
  stop_last
}

make_nano() {
  start_capture nano.pcap "$1" --time-stamp-precision=nano
  s_server "$1" -tls1_2
  timeout 10 gnutls-cli --insecure --port "$1" --priority NORMAL:-VERS-TLS1.3 127.0.0.1 </dev/null \
    >>"$WORK/clients.log" 2>&1 || true
  stop_capture
  stop_last
}

make_pcapng() {
  # dumpcap writes pcapng (one section, one interface); a second capture is
  # converted by editcap to nanosecond pcapng and appended as a second
  # section, whose interface numbering starts again at 0.
  local p2
  dumpcap -q -i lo -f "tcp port $1" -w "$WORK/a.pcapng" 2>/dev/null &
  CAP=$!
  sleep 1.5
  s_server "$1" -tls1_3
  s_client "$1" -tls1_3 -servername one.test.example
  stop_capture
  stop_last
  p2=$(free_port)
  start_capture "$WORK/b.pcap" "$p2" --time-stamp-precision=nano
  s_server "$p2" -tls1_2
  s_client "$p2" -tls1_2 -servername two.test.example
  stop_capture
  stop_last
  editcap -F pcapng "$WORK/b.pcap" "$WORK/b.pcapng"
  cat "$WORK/a.pcapng" "$WORK/b.pcapng" >sections.pcapng
}

make_link_types() {
  # Real frames of one handshake, re-framed: raw IP (editcap), Linux SLL
  # v1 and v2, BSD null and an 802.1Q VLAN tag (pcaps/reframe.py).
  start_capture "$WORK/base.pcap" "$1"
  s_server "$1" -tls1_2
  s_client "$1" -tls1_2 -servername link.test.example
  stop_capture
  stop_last
  editcap -C 14 -T rawip "$WORK/base.pcap" rawip.pcap
  python3 reframe.py "$WORK/base.pcap" sll sll.pcap
  python3 reframe.py "$WORK/base.pcap" sll2 sll2.pcap
  python3 reframe.py "$WORK/base.pcap" null null.pcap
  python3 reframe.py "$WORK/base.pcap" vlan vlan.pcap
}

make_postfix() {
  # Postfix -> Postfix with STARTTLS: tests/it/pcap.rs's ignored
  # make_postfix_capture starts both (tests/it/postfix.rs), submits one
  # message and captures the delivery with tcpdump.
  (cd .. && cargo test --test it pcap::make_postfix_capture -- --ignored --exact >"$WORK/postfix.log" 2>&1) ||
    { cat "$WORK/postfix.log" >&2; return 1; }
}

# peer ROLE PORT [ARGS…]: one of pcaps/peers.py's servers (STARTTLS
# servers that hand the socket to Python's ssl module, SOCKS and HTTP
# CONNECT proxies), started in the background once it listens.
peer() {
  local role=$1 p=$2
  shift 2
  : >"$WORK/peer.log"
  python3 peers.py "$role" "$p" "$@" >"$WORK/peer.log" 2>&1 &
  PIDS="$PIDS $!"
  LAST=$!
  for _ in $(seq 100); do grep -q listening "$WORK/peer.log" && break; sleep 0.05; done
}

# starttls_capture NAME PROTO PORT [s_client options…]: openssl s_client
# -starttls PROTO against peers.py's PROTO server, which presents the RSA
# leaf and intermediate.
starttls_capture() {
  local name=$1 proto=$2 p=$3
  shift 3
  cat "$CERTS/rsa.pem" "$CERTS/int.pem" >"$WORK/chain.pem"
  start_capture "$name.pcap" "$p"
  peer "$proto" "$p" "$WORK/chain.pem" "$CERTS/rsa.key"
  s_client "$p" -starttls "$proto" "$@"
  stop_capture
  stop_last
}

make_imap() { starttls_capture imap imap "$1" -servername imap.test; }
make_pop3() { starttls_capture pop3 pop3 "$1" -servername pop3.test; }
make_ftp() { starttls_capture ftp ftp "$1" -servername ftp.test; }
make_irc() { starttls_capture irc irc "$1" -servername irc.test; }
make_xmpp() { starttls_capture xmpp xmpp "$1" -xmpphost xmpp.test; }
make_ldap() { starttls_capture ldap ldap "$1" -servername ldap.test; }

# proxy_capture NAME ROLE PORT curl-options… : curl through peers.py's
# proxy to an s_server -www behind it; the client-proxy leg is captured.
proxy_capture() {
  local name=$1 role=$2 p=$3 t
  shift 3
  t=$(free_port)
  start_capture "$name.pcap" "$p"
  s_server "$t" -www
  local tls_server=$LAST
  peer "$role" "$p"
  timeout 15 curl -sk --max-time 10 "${@//TARGET/$t}" >>"$WORK/clients.log" 2>&1 || true
  stop_capture
  stop_last
  kill "$tls_server" 2>/dev/null || true
}

make_socks4() { proxy_capture socks4 socks "$1" --socks4 "127.0.0.1:$1" https://127.0.0.1:TARGET/; }
make_socks4a() { proxy_capture socks4a socks "$1" --socks4a "127.0.0.1:$1" https://localhost:TARGET/; }
make_socks5() {
  proxy_capture socks5 socks "$1" -x "socks5h://mail:secret@127.0.0.1:$1" https://localhost:TARGET/
}
make_http_connect() { proxy_capture http-connect connect "$1" -p -x "http://127.0.0.1:$1" https://127.0.0.1:TARGET/; }

ALL="tls13 tls12 tls10 starttls gnutls implicit_to_starttls ehlo_to_tls no_shared_cipher lb_drop reset postfix_hello_512
starttls_rejected sslv2 hrr split_hello grease client_rejects_tls12 client_rejects_tls13 nano pcapng link_types postfix
imap pop3 ftp irc xmpp ldap socks4 socks4a socks5 http_connect"
for name in ${*:-$ALL}; do
  capture "${name//-/_}"
done
[ -f expect.py ] && python3 expect.py
