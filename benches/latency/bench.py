#!/usr/bin/env python3
"""Latency bench: hsscan --enumerate against nmap, sslscan, sslyze and
testssl.sh on real servers made to look far away by a delay proxy.

Run it through `benches/latency/run.sh`, which creates the private network
namespace (only `lo`) this script insists on. For every delay, target and
tool: the wall time, the connections the proxy accepted, the most open at
once (as the server saw them and as the client held them), and whether the
suites the tool found, per protocol, equal the server's truth. The truth is
computed without hsscan: OpenSSL's own cipher list for the server's cipher
string (`openssl ciphers -V -v -s`), or GnuTLS's (`gnutls-cli --priority
--list`), for the protocol versions an `openssl s_client` handshake with the
server reaches.

For hsscan it also gives the floor, (hellos / per-host) x round trips per
hello x RTT, with hellos = hsscan's own connection count and 4 round trips
per hello over STARTTLS (connect + banner, EHLO, STARTTLS, hello) or 2 over
implicit TLS (connect, hello), and the ratio of the wall time to it.

Writes OUT/results.json (every measurement, rewritten after each one, so an
interrupted run keeps what it measured) and OUT/table.md. Standard library
only.
"""
import argparse
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PROTOS = ["SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
# (label, s_client/ciphers flag, what `s_client -brief` prints)
VERSIONS = [("TLSv1.0", "-tls1", "TLSv1"), ("TLSv1.1", "-tls1_1", "TLSv1.1"),
            ("TLSv1.2", "-tls1_2", "TLSv1.2"), ("TLSv1.3", "-tls1_3", "TLSv1.3")]
# Every TLS 1.3 suite OpenSSL knows (its default list leaves the CCM ones out).
TLS13_ALL = ("TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:"
             "TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256")
ALL_TOOLS = ["hsscan", "quick", "nmap", "sslscan", "sslyze", "testssl"]
# The quick check at the default --per-host and with a third slot, which
# lets the headline sender's confirmation go out beside its two hellos.
QUICK_PER_HOST = [2, 3]
EHLO = "bench.example"
SENDER = "postfix-3.7-openssl-3.0-may"

# Each target: the real server's address, the proxy's listening address (a
# port the tools read as STARTTLS for SMTP, or as implicit TLS), and whether
# the server serves one connection at a time.
TARGETS = {
    "postfix": dict(server=("127.0.0.2", 25), listen=("127.0.0.102", 25), starttls=True, serial=False,
                    title="Postfix smtpd, STARTTLS, defaults"),
    "openssl": dict(server=("127.0.0.3", 4433), listen=("127.0.0.103", 443), starttls=False, serial=True,
                    title="openssl s_server, defaults"),
    "gnutls": dict(server=("127.0.0.4", 4434), listen=("127.0.0.104", 443), starttls=False, serial=True,
                   title="gnutls-serv, defaults"),
    # Not in the default set: the wide s_server of benches/scan_peers.sh.
    "openssl-wide": dict(server=("127.0.0.5", 4435), listen=("127.0.0.105", 443), starttls=False, serial=True,
                         title="openssl s_server, ALL:@SECLEVEL=0, TLS 1.0+"),
}
WIDE = ["-min_protocol", "TLSv1", "-cipher", "ALL:@SECLEVEL=0", "-provider", "legacy", "-provider", "default"]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, timeout=60, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                          text=True, errors="replace", timeout=timeout, **kw)


def only_loopback():
    names = [n for _, n in socket.if_nameindex()]
    return names == ["lo"]


def wait_port(addr, port, secs=15):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        try:
            with socket.create_connection((addr, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


# --- servers -------------------------------------------------------------

class Servers:
    def __init__(self, work, certs):
        self.work = work
        self.certs = certs
        self.procs = []
        self.postfix_conf = None

    def start(self, name):
        t = TARGETS[name]
        addr, port = t["server"]
        if name == "postfix":
            self.start_postfix(addr, port)
        elif name.startswith("openssl"):
            extra = WIDE if name == "openssl-wide" else []
            self.spawn(name, ["openssl", "s_server", "-accept", f"{addr}:{port}", "-cert", f"{self.certs}/rsa.pem",
                              "-key", f"{self.certs}/rsa.key", "-cert_chain", f"{self.certs}/int.pem", "-quiet"] + extra)
        elif name == "gnutls":
            # gnutls-serv binds every address of the namespace: only lo.
            self.spawn(name, ["gnutls-serv", "-p", str(port), "--x509certfile", f"{self.certs}/rsa-chain.pem",
                              "--x509keyfile", f"{self.certs}/rsa.key"])
        if not wait_port(addr, port):
            raise SystemExit(f"bench: {name} does not listen on {addr}:{port}")

    def spawn(self, name, cmd):
        out = open(os.path.join(self.work, f"{name}.log"), "w")
        # stdin a pipe that stays open: s_server quits at end of input.
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
        self.procs.append(p)

    def start_postfix(self, addr, port):
        # The throwaway Postfix of benches/lib.sh (as tests/it/postfix.rs runs it).
        d = os.path.join(self.work, "postfix")
        os.makedirs(d, exist_ok=True)
        script = f'. "{REPO}/benches/lib.sh"; start_postfix "$1" "$2" "$3" "$4"'
        r = run(["bash", "-c", script, "_", d, addr, str(port), self.certs])
        if r.returncode != 0:
            raise SystemExit(f"bench: postfix did not start:\n{r.stdout}")
        self.postfix_conf = os.path.join(d, "conf")

    def stop(self):
        if self.postfix_conf:
            run(["postfix", "-c", self.postfix_conf, "stop"])
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


# --- truth ---------------------------------------------------------------

def openssl_names():
    """IANA and OpenSSL names -> codepoint, from OpenSSL itself."""
    r = run(["openssl", "ciphers", "-provider", "legacy", "-provider", "default", "-V", "-stdname",
             "-ciphersuites", TLS13_ALL, "ALL:COMPLEMENTOFALL:@SECLEVEL=0"])
    names = {}
    for line in r.stdout.splitlines():
        m = re.match(r"\s*0x([0-9A-F]{2}),0x([0-9A-F]{2}) - (\S+) +- (\S+)", line)
        if m:
            code = f"0x{m.group(1)}{m.group(2)}".lower()
            names[m.group(3)] = code
            names[m.group(4)] = code
    return names


def version_handshakes(addr, port, flag, printed, starttls):
    cmd = ["openssl", "s_client", "-connect", f"{addr}:{port}", "-brief", flag, "-cipher", "ALL:@SECLEVEL=0",
           "-provider", "legacy", "-provider", "default"]
    if starttls:
        cmd += ["-starttls", "smtp", "-name", EHLO]
    r = run(cmd, timeout=30)
    return f"Protocol version: {printed}" in r.stdout.splitlines()


def rsa_suites(flag, cipher_string, provider=()):
    """Suites `openssl ciphers -v -V -s FLAG CS` lists that an RSA certificate can serve."""
    r = run(["openssl", "ciphers", *provider, "-v", "-V", "-s", flag, cipher_string])
    out = []
    for line in r.stdout.splitlines():
        f = line.split()
        m = re.match(r"0x([0-9A-F]{2}),0x([0-9A-F]{2})$", f[0]) if f else None
        if not m:
            continue
        kv = dict(x.split("=", 1) for x in f if "=" in x)
        tls13 = "TLSv1.3" in f
        if (flag == "-tls1_3") != tls13:
            continue
        if kv.get("Au") in ("RSA", "None", "any") and not re.search("PSK|SRP", kv.get("Kx", "")):
            out.append(f"0x{m.group(1)}{m.group(2)}".lower())
    return out


def truth_openssl_family(addr, port, starttls, cipher_string, provider=()):
    t = {}
    for label, flag, printed in VERSIONS:
        if version_handshakes(addr, port, flag, printed, starttls):
            t[label] = rsa_suites(flag, cipher_string, provider)
    return t


def truth_gnutls(addr, port, names):
    """gnutls-cli --priority NORMAL --list: the suites for an RSA certificate,
    at each version the server reaches; each one confirmed alone with s_client."""
    r = run(["gnutls-cli", "--priority", "NORMAL", "--list"])
    listed = []  # (code, gnutls name, lowest version)
    for line in r.stdout.splitlines():
        m = re.match(r"(TLS_\S+)\s+0x([0-9a-f]{2}), 0x([0-9a-f]{2})\s+(\S+)", line)
        if m:
            listed.append((f"0x{m.group(2)}{m.group(3)}", m.group(1), m.group(4)))
    rank = {"TLS1.0": 0, "TLS1.1": 1, "TLS1.2": 2, "TLS1.3": 3, "SSL3.0": -1}
    by_code = {}
    for n, c in names.items():
        if re.match(r"^[A-Z0-9-]+$", n) or n.startswith("TLS_AES") or n.startswith("TLS_CHACHA"):
            by_code.setdefault(c, n)  # an OpenSSL name (IANA names have underscores)
    t, notes = {}, []
    for i, (label, flag, printed) in enumerate(VERSIONS):
        if not version_handshakes(addr, port, flag, printed, False):
            continue
        suites = []
        for code, gname, low in listed:
            low = rank.get(low, 9)
            usable = (low == 3) if flag == "-tls1_3" else (low != 3 and i >= low)
            rsa = flag == "-tls1_3" or re.match(r"TLS_(RSA|DHE_RSA|ECDHE_RSA)_", gname)
            if not (usable and rsa):
                continue
            oname = by_code.get(code)
            if oname is None:
                notes.append(f"{label} {gname}: OpenSSL cannot offer it; kept from the priority")
                suites.append(code)
                continue
            if suite_handshakes(addr, port, flag, oname):
                suites.append(code)
            else:
                notes.append(f"{label} {gname}: listed by the priority, refused by the server alone")
        t[label] = suites
    return t, notes


def suite_handshakes(addr, port, flag, oname):
    cmd = ["openssl", "s_client", "-connect", f"{addr}:{port}", "-brief", flag,
           "-provider", "legacy", "-provider", "default"]
    if flag == "-tls1_3":
        cmd += ["-ciphersuites", oname, "-cipher", "ALL:@SECLEVEL=0"]
    else:
        cmd += ["-cipher", f"{oname}:@SECLEVEL=0"]
    r = run(cmd, timeout=30)
    return any(line.startswith("Ciphersuite: ") for line in r.stdout.splitlines())


def truth_for(name, servers, names):
    addr, port = TARGETS[name]["server"]
    if name == "postfix":
        cs = run(["postconf", "-c", servers.postfix_conf, "-h", "tls_medium_cipherlist"]).stdout.strip()
        # Postfix runs OpenSSL at security level 0 (it completes TLS 1.0
        # and anonymous handshakes, which level 1 and up refuse).
        cs += ":@SECLEVEL=0"
        return truth_openssl_family(addr, port, True, cs), [f"cipher string {cs}"]
    if name == "openssl":
        return truth_openssl_family(addr, port, False, "DEFAULT"), ["cipher string DEFAULT"]
    if name == "openssl-wide":
        return (truth_openssl_family(addr, port, False, "ALL:@SECLEVEL=0", ("-provider", "legacy", "-provider", "default")),
                ["cipher string ALL:@SECLEVEL=0"])
    if name == "gnutls":
        t, notes = truth_gnutls(addr, port, names)
        return t, ["priority NORMAL"] + notes
    raise SystemExit(f"bench: unknown target {name}")


# --- what each tool found: {proto: [codes]} -------------------------------

def proto_label(s):
    s = s.strip().replace(" ", "")
    m = re.match(r"(SSL|TLS)v?(\d)(?:[._](\d))?$", s, re.I)
    if not m:
        return None
    fam, major, minor = m.group(1).upper(), m.group(2), m.group(3)
    if fam == "SSL":
        return f"SSLv{major}"
    if major == "1":
        return f"TLSv1.{minor or '0'}"
    return None


def add(found, unmapped, proto, name, names):
    if proto is None:
        return
    code = names.get(name)
    if code is None and name.startswith("TLS_AKE_WITH_"):  # nmap's TLS 1.3 names
        code = names.get("TLS_" + name[len("TLS_AKE_WITH_"):])
    if code is None:
        unmapped.append(f"{proto} {name}")
        return
    found.setdefault(proto, []).append(code)


def parse_hsscan(out, _files, _names):
    try:
        doc = json.loads(out)
    except ValueError:
        return None, [], {}
    enum = doc.get("enumeration") or {}
    found = {p: [c["id"].lower() for c in lst] for p, lst in (enum.get("ciphers") or {}).items() if lst}
    extra = {"connections": doc.get("connections"), "complete": enum.get("complete")}
    return found, [], extra


def parse_nmap(out, _files, names):
    found, unmapped, proto = {}, [], None
    for line in out.splitlines():
        m = re.match(r"\|   ((?:SSL|TLS)v[0-9.]+):\s*$", line)
        if m:
            proto = proto_label(m.group(1))
            continue
        m = re.match(r"\|       ((?:TLS|SSL)_[A-Za-z0-9_]+) ", line)
        if m and proto:
            add(found, unmapped, proto, m.group(1), names)
    return found, unmapped, {}


def parse_sslscan(out, _files, names):
    found, unmapped = {}, []
    for line in out.splitlines():
        m = re.match(r"(?:Preferred|Accepted)\s+(\S+)\s+\d+ bits\s+(\S+)", line)
        if m:
            add(found, unmapped, proto_label(m.group(1)), m.group(2), names)
    return found, unmapped, {}


def parse_sslyze(_out, files, names):
    try:
        doc = json.load(open(files["json"]))
    except (OSError, ValueError):
        return None, [], {}
    found, unmapped = {}, []
    keys = {"ssl_2_0": "SSLv2", "ssl_3_0": "SSLv3", "tls_1_0": "TLSv1.0", "tls_1_1": "TLSv1.1",
            "tls_1_2": "TLSv1.2", "tls_1_3": "TLSv1.3"}
    for res in doc.get("server_scan_results", []):
        sr = res.get("scan_result") or {}
        for k, proto in keys.items():
            attempt = sr.get(f"{k}_cipher_suites") or {}
            result = attempt.get("result") or {}
            for acc in result.get("accepted_cipher_suites") or []:
                add(found, unmapped, proto, acc["cipher_suite"]["name"], names)
    return found, unmapped, {}


def parse_testssl(_out, files, _names):
    try:
        doc = json.load(open(files["json"]))
    except (OSError, ValueError):
        return None, [], {}
    found = {}
    keys = {"ssl2": "SSLv2", "ssl3": "SSLv3", "tls1": "TLSv1.0", "tls1_1": "TLSv1.1", "tls1_2": "TLSv1.2",
            "tls1_3": "TLSv1.3"}
    for item in doc if isinstance(doc, list) else doc.get("scanResult", []):
        m = re.match(r"cipher-(ssl2|ssl3|tls1|tls1_1|tls1_2|tls1_3)_x([0-9a-f]+)$", item.get("id", ""))
        if m:
            code = m.group(2)
            if len(code) > 4:  # SSLv2 kinds are 3 bytes
                code = code[-6:]
            found.setdefault(keys[m.group(1)], []).append(f"0x{int(code, 16):04x}")
    return found, [], {}


def compare(found, truth):
    if found is None:
        return {"exact": False, "missing": None, "extra": None, "error": "no parsable output"}
    tp = {(p, c) for p, cs in truth.items() for c in cs}
    fp = {(p, c) for p, cs in found.items() for c in cs}
    return {"exact": tp == fp, "missing": sorted(f"{p} {c}" for p, c in tp - fp),
            "extra": sorted(f"{p} {c}" for p, c in fp - tp), "pairs": len(fp)}


# --- one measurement --------------------------------------------------------

def tool_cmd(tool, t, a, files, per_host):
    addr, port = t["listen"]
    hp = f"{addr}:{port}"
    if tool in ("hsscan", "quick"):
        # An explicit sender: the default one (`local`) runs postconf, which
        # on a machine with Postfix but no /etc/postfix/main.cf fails after
        # Postfix's one-second sleep on fatal errors, a second that is not
        # the scan. This is the profile `local` assumes then.
        cmd = [a.hsscan, "--json", "--per-host", str(per_host), "--sender", SENDER]
        if tool == "hsscan":
            cmd.append("--enumerate")
        if t["starttls"]:
            cmd += ["--starttls", "smtp", "--ehlo", EHLO]
        return cmd + [hp]
    if tool == "nmap":
        # Port 25 makes ssl-enum-ciphers speak STARTTLS; 443 is TLS.
        return ["nmap", "-Pn", "-n", "-p", str(port), "--script", "ssl-enum-ciphers", addr]
    if tool == "sslscan":
        return ["sslscan", "--no-colour"] + (["--starttls-smtp"] if t["starttls"] else []) + [hp]
    if tool == "sslyze":
        return [a.sslyze, "--json_out", files["json"]] + (["--starttls", "smtp"] if t["starttls"] else []) + [hp]
    if tool == "testssl":
        # -n none: no PTR lookup; --warnings batch: never wait for an answer.
        return ([a.testssl, "--quiet", "--color", "0", "-n", "none", "--warnings", "batch", "-E",
                 "--jsonfile", files["json"]] + (["-t", "smtp"] if t["starttls"] else []) + [hp])
    raise SystemExit(f"bench: unknown tool {tool}")


PARSERS = {"hsscan": parse_hsscan, "quick": parse_hsscan, "nmap": parse_nmap, "sslscan": parse_sslscan,
           "sslyze": parse_sslyze, "testssl": parse_testssl}


def measure(tool, tname, delay, per_host, a, truth, names, outdir):
    t = TARGETS[tname]
    tag = f"{tname}-{delay}ms-{tool}" + (f"-p{per_host}" if tool in ("hsscan", "quick") else "")
    files = {"json": os.path.join(outdir, tag + ".json")}
    for f in files.values():
        if os.path.exists(f):
            os.remove(f)
    la, lp = t["listen"]
    sa, sp = t["server"]
    ready = os.path.join(outdir, tag + ".ready")
    summary = os.path.join(outdir, tag + ".proxy.json")
    for f in (ready, summary):
        if os.path.exists(f):
            os.remove(f)
    proxy = subprocess.Popen([sys.executable, os.path.join(HERE, "rtt_proxy.py"), "--rtt", str(delay),
                              "--map", f"{la}:{lp}={sa}:{sp}", "--log", os.path.join(outdir, tag + ".conns.jsonl"),
                              "--summary", summary, "--ready", ready],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(outdir, tag + ".proxy.log"), "w"))
    for _ in range(200):
        if os.path.exists(ready):
            break
        time.sleep(0.05)
    else:
        proxy.kill()
        raise SystemExit("bench: the proxy did not start")
    cmd = tool_cmd(tool, t, a, files, per_host)
    load = os.getloadavg()[0]
    t0 = time.monotonic()
    timed_out = False
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                           text=True, errors="replace", timeout=a.tool_timeout)
        out, err, rc = p.stdout, p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err, rc, timed_out = "timed out", None, True
    wall = time.monotonic() - t0
    with open(os.path.join(outdir, tag + ".out"), "w") as f:
        f.write(out)
    with open(os.path.join(outdir, tag + ".err"), "w") as f:
        f.write(err)
    # Let the last closes cross the proxy before it counts.
    time.sleep(max(0.3, 3 * delay / 1000))
    proxy.send_signal(signal.SIGTERM)
    try:
        proxy.wait(10)
    except subprocess.TimeoutExpired:
        proxy.kill()
    try:
        px = json.load(open(summary))
    except (OSError, ValueError):
        px = {}
    if os.path.exists(ready):
        os.remove(ready)
    found, unmapped, extra = PARSERS[tool](out, files, names)
    extra.update(in_flight(os.path.join(outdir, tag + ".conns.jsonl"), wall))
    rec = {"target": tname, "delay_ms": delay, "tool": tool, "per_host": per_host if tool in ("hsscan", "quick") else None,
           "command": cmd, "wall_s": round(wall, 3), "exit": rc, "timed_out": timed_out, "load1": load,
           "proxy_connections": px.get("connections"), "max_open_server": px.get("max_open_server"),
           "max_open_client": px.get("max_open_client"), "max_open_proxy": px.get("max_open_proxy"),
           "still_open_at_stop": px.get("still_open"), "found": found, "unmapped": unmapped, **extra}
    if tool != "quick":
        rec.update(compare(found, truth))
        if unmapped:
            rec["exact"] = False
    if tool in ("hsscan", "quick"):
        rec.update(floor(rec, t, delay, per_host, outdir, tag))
    log(f"  {tag:34} {wall:8.2f} s  {px.get('connections')} conns, at once {px.get('max_open_server')}"
        f"/{px.get('max_open_client')}  " + ("exact" if rec.get("exact") else
                                            "" if tool == "quick" else f"NOT exact {rec.get('missing')} {rec.get('extra')}"))
    return rec


def in_flight(conns, wall):
    """Connections in flight on average (each from its accept at the proxy
    until the client's close), and a connection's mean lifetime, from the
    proxy's log."""
    life = []
    try:
        for line in open(conns):
            e = json.loads(line)
            if e.get("ev") == "close" and e.get("client_end_read") is not None:
                life.append(e["client_end_read"])
    except (OSError, ValueError):
        return {}
    if not life or not wall:
        return {}
    return {"mean_in_flight": round(sum(life) / wall, 2), "mean_connection_s": round(sum(life) / len(life), 4)}


def floor(rec, t, delay, per_host, outdir, tag):
    hellos = rec.get("connections") or rec.get("proxy_connections") or 0
    rt = 4 if t["starttls"] else 2
    f = {"hellos": hellos, "round_trips_per_hello": rt}
    if rec["tool"] == "quick":
        if delay:
            f["round_trips"] = round(rec["wall_s"] / (delay / 1000), 2)
            # The quick check's own two hellos (the first two connections),
            # from the first accept to the later of their closes by the
            # client, in round trips: the run's wall time also holds the
            # process start and the headline sender's confirmation.
            try:
                ends, starts = [], []
                opened = {}
                for line in open(os.path.join(outdir, tag + ".conns.jsonl")):
                    e = json.loads(line)
                    if e.get("ev") == "open":
                        opened[e["id"]] = e["t"]
                    elif e.get("ev") == "close" and e["id"] in (1, 2) and e.get("client_end_read") is not None:
                        starts.append(opened[e["id"]])
                        ends.append(opened[e["id"]] + e["client_end_read"])
                if len(ends) == 2:
                    f["quick_round_trips"] = round((max(ends) - min(starts)) / (delay / 1000), 2)
            except (OSError, ValueError, KeyError):
                pass
        return f
    fl = hellos / per_host * rt * delay / 1000
    f["floor_s"] = round(fl, 3)
    f["ratio"] = round(rec["wall_s"] / fl, 2) if fl else None
    if t["serial"]:
        # A server that serves one connection at a time is busy about one
        # round trip with every hello it answers with a flight (from the
        # hello's arrival until our close reaches it); refused hellos (a
        # 7-byte alert) cost it nothing, and so does a hello whose client
        # closed its side with it (read by the proxy before the virtual
        # connect completes, one RTT after the accept): the server has
        # the close before it answers.
        answered = 0
        try:
            for line in open(os.path.join(outdir, tag + ".conns.jsonl")):
                e = json.loads(line)
                held = (e.get("client_end_read") or 0) >= delay / 1000
                if e.get("ev") == "close" and (e.get("down_bytes") or 0) > 7 and held:
                    answered += 1
        except OSError:
            pass
        sf = max(fl, answered * delay / 1000)
        f["answered_hellos"] = answered
        f["serial_floor_s"] = round(sf, 3)
        f["serial_ratio"] = round(rec["wall_s"] / sf, 2) if sf else None
    return f


# --- report ------------------------------------------------------------------

def versions():
    def first(cmd, pat=None):
        try:
            r = run(cmd, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        for line in r.stdout.splitlines():
            line = re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
            if pat is None or re.search(pat, line):
                m = re.search(r"\d+\.\d+[0-9a-z.+~-]*", line)
                return m.group(0) if m else line
        return None
    try:
        # The last commit that changed what the binary is built from.
        commit = run(["git", "-C", REPO, "log", "-1", "--format=%h %cs", "--", "src", "wire", "Cargo.toml",
                      "Cargo.lock"]).stdout.strip()
    except OSError:
        commit = None
    return {"hsscan": first([A.hsscan, "--version"]), "hsscan source commit": commit, "nmap": first(["nmap", "--version"], "Nmap version"),
            "sslscan": first(["sslscan", "--version"], r"\d\.\d"),
            "sslyze": first([os.path.join(os.path.dirname(A.sslyze), "python"), "-c",
                             "import importlib.metadata as m; print(m.version('sslyze'))"]),
            "testssl": first([A.testssl, "--version"], r"testssl +\d"), "openssl": first(["openssl", "version"], "OpenSSL"),
            "gnutls-serv": first(["gnutls-serv", "--version"]), "postfix": first(["postconf", "-d", "-h", "mail_version"]),
            "python": sys.version.split()[0], "kernel": os.uname().release, "nproc": os.cpu_count()}


def cell(r):
    if r is None:
        return ""
    s = f"{r['wall_s']:.2f} s · {r.get('proxy_connections')} · {r.get('max_open_server')}"
    if r.get("timed_out"):
        s += " (timed out)"
    if r["tool"] == "quick":
        return s
    if r.get("exact"):
        return s + " · exact"
    if r.get("missing") is None:
        return s + " · **no result**"
    bits = []
    if r["missing"]:
        bits.append(f"misses {len(r['missing'])}")
    if r["extra"]:
        bits.append(f"{len(r['extra'])} extra")
    if r.get("unmapped"):
        bits.append(f"{len(r['unmapped'])} unnamed")
    return s + " · **" + ", ".join(bits) + "**"


def table(doc):
    res = doc["results"]
    delays = doc["delays_ms"]
    lines = [f"Run {doc['started']} – {doc.get('finished', '(unfinished)')}, load at start {doc['load_start']}.", ""]
    lines.append("Each cell: wall time · connections at the proxy · most open at once (as the server saw them)"
                 " · suites equal to the truth.")
    lines.append("")
    hdr = "| target (truth) | tool | " + " | ".join(f"{d} ms" for d in delays) + " |"
    lines += [hdr, "|" + " --- |" * (2 + len(delays))]
    for tname in doc["targets"]:
        tr = doc["truth"].get(tname, {})
        pairs = sum(len(v) for v in tr.get("suites", {}).values())
        ttl = f"{TARGETS[tname]['title']} ({pairs} pairs: " + ", ".join(
            f"{p} {len(v)}" for p, v in tr.get("suites", {}).items()) + ")"
        rows = []
        for tool in doc["tools"]:
            if tool == "quick" and not TARGETS[tname]["starttls"]:
                continue
            phs = doc["per_host"] if tool == "hsscan" else (QUICK_PER_HOST if tool == "quick" else [None])
            for ph in phs:
                label = tool if ph is None else (f"hsscan --enumerate --per-host {ph}" if tool == "hsscan"
                                                  else "hsscan (quick check)")
                cells = []
                for d in delays:
                    r = next((x for x in res if x["target"] == tname and x["tool"] == tool and x["delay_ms"] == d
                              and x["per_host"] == ph), None)
                    cells.append(cell(r))
                rows.append(f"| {ttl if not rows else ''} | {label} | " + " | ".join(cells) + " |")
        lines += rows
    # hsscan's floor
    lines += ["", "hsscan `--enumerate` against its floor, (hellos ÷ per-host) × round trips per hello × RTT"
              " (hellos = its own connection count; 4 round trips per hello over STARTTLS, 2 over implicit TLS)."
              " For the servers that serve one connection at a time, the serial floor is the larger of that and"
              " one RTT per hello the server answered with a flight while the client held the connection."
              " \"In flight\": connections open on average"
              " (the sum of their lifetimes, accept to the client's close, over the wall time).", ""]
    nz = [d for d in delays if d]
    lines.append("| target | per-host | hellos | " + " | ".join(f"{d} ms: time / floor = ratio" for d in nz) + " |")
    lines.append("|" + " --- |" * (3 + len(nz)))
    for tname in doc["targets"]:
        for ph in doc["per_host"]:
            rs = [next((x for x in res if x["target"] == tname and x["tool"] == "hsscan" and x["delay_ms"] == d
                        and x["per_host"] == ph), None) for d in nz]
            if not any(rs):
                continue
            hel = next((r["hellos"] for r in rs if r), "")
            cells = []
            for r in rs:
                if not r or not r.get("floor_s"):
                    cells.append("")
                    continue
                c = f"{r['wall_s']:.2f} / {r['floor_s']:.2f} s = **{r['ratio']:.2f}×**"
                if r.get("mean_in_flight") is not None:
                    c += f", {r['mean_in_flight']:.2f} in flight"
                if "serial_floor_s" in r:
                    c += f" (serial floor {r['serial_floor_s']:.2f} s: {r['serial_ratio']:.2f}×)"
                cells.append(c)
            lines.append(f"| {tname} | {ph} | {hel} | " + " | ".join(cells) + " |")
    q = [x for x in res if x["tool"] == "quick" and x["delay_ms"]]
    if q:
        lines += ["", "hsscan's quick check (no `--enumerate`): wall time in round trips; the last column first takes"
                  " off the wall time of the same check at 0 ms (process start and local work: time that is not"
                  " a round trip).", "",
                  "| target | per-host | delay | wall | connections | round trips (wall ÷ RTT) | (wall − wall at 0 ms) ÷ RTT |"
                  " its two hellos, first accept to last close, ÷ RTT |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in q:
            z = next((x for x in res if x["tool"] == "quick" and x["target"] == r["target"] and not x["delay_ms"]
                      and x.get("per_host") == r.get("per_host")), None)
            net = f"{(r['wall_s'] - z['wall_s']) / (r['delay_ms'] / 1000):.2f}" if z and r["delay_ms"] else ""
            lines.append(f"| {r['target']} | {r.get('per_host')} | {r['delay_ms']} ms | {r['wall_s']:.3f} s |"
                         f" {r.get('proxy_connections')} | {r.get('round_trips')} | {net} |"
                         f" {r.get('quick_round_trips', '')} |")
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in doc["versions"].items() if v), ""]
    return "\n".join(lines)


def save(doc, out):
    tmp = os.path.join(out, "results.json.tmp")
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(tmp, os.path.join(out, "results.json"))
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(table(doc))


def csv(s, conv=str):
    return [conv(x) for x in s.split(",") if x]


def main():
    global A
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--delays", default="0,20,80", help="round-trip times to add, ms (default 0,20,80)")
    ap.add_argument("--targets", default="postfix,openssl,gnutls",
                    help="postfix, openssl, gnutls, openssl-wide (default postfix,openssl,gnutls)")
    ap.add_argument("--tools", default=",".join(ALL_TOOLS),
                    help="hsscan (--enumerate), quick (hsscan's quick check, STARTTLS targets), nmap, sslscan,"
                         " sslyze, testssl (default all)")
    ap.add_argument("--per-host", default="1,2,4", help="hsscan --per-host values (default 1,2,4)")
    ap.add_argument("--hsscan", default=os.path.join(REPO, "target/release/hsscan"))
    ap.add_argument("--sslyze", default=os.path.expanduser(
        os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "hsscan-bench-venv/bin/sslyze")))
    ap.add_argument("--testssl", default=shutil.which("testssl") or shutil.which("testssl.sh") or "testssl")
    ap.add_argument("--tool-timeout", type=float, default=1200, help="seconds one tool run may take")
    ap.add_argument("--out", required=True, help="directory for results.json, table.md and every tool's output")
    A = a = ap.parse_args()
    if not only_loopback():
        raise SystemExit("bench: run me through benches/latency/run.sh (a network namespace with only lo)")
    delays, targets, tools = csv(a.delays, float), csv(a.targets), csv(a.tools)
    delays = [int(d) if d == int(d) else d for d in delays]
    per_host = csv(a.per_host, int)
    for x in targets:
        if x not in TARGETS:
            raise SystemExit(f"bench: unknown target {x}")
    for x in tools:
        if x not in ALL_TOOLS:
            raise SystemExit(f"bench: unknown tool {x}")
    os.makedirs(a.out, exist_ok=True)
    raw = os.path.join(a.out, "raw")
    os.makedirs(raw, exist_ok=True)
    work = tempfile.mkdtemp(prefix="hsscan-latbench-")
    os.chmod(work, 0o755)  # the postfix user must reach its queue and data
    certs = os.path.join(work, "certs")
    run(["bash", os.path.join(REPO, "tests/support/mkcerts.sh"), certs])
    names = openssl_names()
    doc = {"started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "load_start": os.getloadavg()[0], "delays_ms": delays, "targets": targets, "tools": tools,
           "per_host": per_host, "versions": versions(), "truth": {}, "results": []}
    servers = Servers(work, certs)
    try:
        for tname in targets:
            servers.start(tname)
            suites, notes = truth_for(tname, servers, names)
            doc["truth"][tname] = {"suites": suites, "notes": notes, "server": TARGETS[tname]["server"],
                                   "proxy": TARGETS[tname]["listen"], "starttls": TARGETS[tname]["starttls"]}
            log(f"truth {tname}: " + ", ".join(f"{p} {len(v)}" for p, v in suites.items()) + f"  {notes}")
        save(doc, a.out)
        for d in delays:
            for tname in targets:
                log(f"== {d} ms, {tname}")
                for tool in tools:
                    if tool == "quick" and not TARGETS[tname]["starttls"]:
                        continue
                    for ph in (per_host if tool == "hsscan" else QUICK_PER_HOST if tool == "quick" else [None]):
                        doc["results"].append(measure(tool, tname, d, ph, a, doc["truth"][tname]["suites"],
                                                      names, raw))
                        save(doc, a.out)
        doc["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        save(doc, a.out)
    finally:
        servers.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(table(doc))


if __name__ == "__main__":
    main()
