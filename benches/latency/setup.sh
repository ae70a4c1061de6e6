#!/usr/bin/env bash
# Installs what the latency bench (benches/latency/run.sh) runs, on a Debian
# 12 machine, idempotently: the servers (Postfix, openssl, gnutls-bin), the
# peers (nmap, sslscan, testssl.sh from Debian; sslyze from PyPI into a
# virtual environment at ${XDG_CACHE_HOME:-~/.cache}/hsscan-bench-venv,
# since Debian's python3 refuses pip outside one), iproute2 for the
# network namespace. Not part of .ci/run: the bench is not a test.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

need=()
for pair in openssl:openssl gnutls-serv:gnutls-bin gnutls-cli:gnutls-bin /usr/sbin/postfix:postfix \
        /usr/bin/nmap:nmap /usr/bin/sslscan:sslscan /usr/bin/testssl:testssl.sh /usr/sbin/ip:iproute2 \
        python3:python3; do
    bin=${pair%%:*} pkg=${pair#*:}
    command -v "$bin" >/dev/null 2>&1 || need+=("$pkg")
done
if ! /usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null; then need+=(python3-venv); fi
if [ ${#need[@]} -gt 0 ]; then
    # Postfix as .ci/run installs it: "No configuration", so the system
    # instance never starts; the bench runs a throwaway one of its own.
    echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u)
fi

venv=${XDG_CACHE_HOME:-$HOME/.cache}/hsscan-bench-venv
if ! "$venv/bin/sslyze" --help >/dev/null 2>&1; then
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q sslyze
fi
echo "setup.sh: nmap $(nmap --version | awk '/Nmap version/{print $3}'), sslscan $(sslscan --version | grep -o '[0-9]\.[0-9][0-9.]*' | head -1)," \
    "testssl $(dpkg-query -W -f '${Version}' testssl.sh 2>/dev/null), sslyze $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("sslyze"))')"
