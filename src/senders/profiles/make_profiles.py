#!/usr/bin/env python3
"""Writes the list-based sender profiles (the ones without a captured hello)
from ../shared/data/client-profiles.json, so their facts keep their sources.
Run from this directory: python3 make_profiles.py /path/to/shared/data"""
import json, sys
data = json.load(open(sys.argv[1] + "/client-profiles.json"))
P = {p["id"]: p for p in data["profiles"]}
NAMED = {"x25519": "0x001d", "secp256r1": "0x0017", "secp384r1": "0x0018", "secp521r1": "0x0019", "x448": "0x001e",
         "ffdhe2048": "0x0100", "ffdhe3072": "0x0101"}
def codes(lst): return [c["code"].lower() for c in lst]
def q(xs): return "[" + ", ".join('"%s"' % x for x in xs) + "]"
def write(name, head, hello, accept):
    with open(name + ".toml", "w") as f:
        f.write("# Written by make_profiles.py from shared/data/client-profiles.json; edit there or here with a source.\n")
        for k, v in head.items(): f.write('%s = %s\n' % (k, json.dumps(v)))
        f.write("\n[hello]\n")
        for k, v in hello.items(): f.write('%s = %s\n' % (k, q(v) if isinstance(v, list) else json.dumps(v)))
        f.write("\n[accept]\n")
        for k, v in accept.items(): f.write('%s = %s\n' % (k, json.dumps(v)))

c35 = P["openssl-3.5-default"]["capture"]
write("postfix-openssl-3.5-may", {
    "id": "postfix-openssl-3.5-may", "name": "Postfix on OpenSSL 3.5 (X25519MLKEM768 key share) at smtp_tls_security_level = may",
    "mta": "postfix", "mta_version": "3.10", "library": "OpenSSL 3.5", "level": "may", "derivation": "derived",
    "sources": "OpenSSL 3.5.0 default ClientHello (testssl.sh client-simulation data, shared/data/client-profiles.json openssl-3.5-default): suites, groups, key shares X25519MLKEM768 + X25519, TLS 1.2-1.3; Postfix sends no SNI by default; a Postfix below verify runs OpenSSL at security level 0 (observed with Postfix 3.7 on OpenSSL 3.0); DH groups below 1024 bits are refused even at security level 0 (OpenSSL 1.1.0 and later, ssl_security_default_callback: no DH keys weaker than 1024 bits at level 0; the real client against gnutls-serv with a 768-bit group: 'dh key too small', tests/it/senders.rs)."},
    {"versions": ["TLSv1.3", "TLSv1.2"], "cipher_suites": codes(c35["cipher_suites"]),
     "groups": ["0x11ec", "0x001d", "0x0017", "0x001e", "0x0018", "0x0019", "0x0100", "0x0101"],
     "key_shares": [g.lower() for g in c35["key_share_groups"]], "sni": False},
    {"min_version": "TLSv1.2", "legacy_signatures": True, "min_dh_bits": 1024, "min_rsa_bits": 512, "certificate": "any"})
write("postfix-openssl-3.5-verify", {
    "id": "postfix-openssl-3.5-verify", "name": "Postfix on OpenSSL 3.5 (X25519MLKEM768 key share) at smtp_tls_security_level = verify",
    "mta": "postfix", "mta_version": "3.10", "library": "OpenSSL 3.5", "level": "verify", "derivation": "derived",
    "sources": "as postfix-openssl-3.5-may; at verify OpenSSL's default security level 1 applies (no SHA-1 signatures, DH and RSA of at least 1024 bits) and the chain must verify"},
    {"versions": ["TLSv1.3", "TLSv1.2"], "cipher_suites": codes(c35["cipher_suites"]),
     "groups": ["0x11ec", "0x001d", "0x0017", "0x001e", "0x0018", "0x0019", "0x0100", "0x0101"],
     "key_shares": [g.lower() for g in c35["key_share_groups"]], "sni": False},
    {"min_version": "TLSv1.2", "legacy_signatures": False, "min_dh_bits": 1024, "min_rsa_bits": 1024, "certificate": "verify"})
# RHEL 9 DEFAULT crypto policy: TLS >= 1.2, no SHA-1 signatures, RSA and DH >= 2048, no CBC-SHA1 suites
rhel = [s for s in codes(P["openssl-3.0-default"]["capture"]["cipher_suites"])]
write("postfix-rhel9-default", {
    "id": "postfix-rhel9-default", "name": "Postfix on RHEL 9 (OpenSSL 3.0, DEFAULT crypto policy) at smtp_tls_security_level = may",
    "mta": "postfix", "mta_version": "3.5", "library": "OpenSSL 3.0 (RHEL 9 DEFAULT policy)", "level": "may", "derivation": "derived",
    "sources": "RHEL 9 crypto-policies DEFAULT: MinProtocol TLSv1.2, @SECLEVEL=2 (RSA and DH keys of at least 2048 bits, no SHA-1 signatures); the OpenSSL 3.0 default hello (captured on Debian 12) restricted to TLS 1.2-1.3"},
    {"versions": ["TLSv1.3", "TLSv1.2"], "cipher_suites": rhel,
     "groups": ["0x001d", "0x0017", "0x001e", "0x0019", "0x0018", "0x0100", "0x0101", "0x0102", "0x0103", "0x0104"],
     "key_shares": ["0x001d"], "sni": False},
    {"min_version": "TLSv1.2", "legacy_signatures": False, "min_dh_bits": 2048, "min_rsa_bits": 2048, "certificate": "any"})
m = P["microsoft-365-outbound"]
write("exchange-online", {
    "id": "exchange-online", "name": "Exchange Online (Microsoft 365) outbound",
    "mta": "exchange-online", "mta_version": "", "library": "Schannel (Windows Server 2019+)", "level": "may", "derivation": "documented",
    "sources": "Microsoft 365 docs technical-reference-details-about-encryption.md (TLS 1.2 only since 2020-10-15, the listed suites, no 3DES, no SHA-1 certificates); groups of Windows Server 2019 Schannel"},
    {"versions": ["TLSv1.2"], "cipher_suites": codes(m["cipher_suites"]), "groups": ["0x001d", "0x0017", "0x0018"], "key_shares": [], "sni": True},
    {"min_version": "TLSv1.2", "legacy_signatures": False, "min_dh_bits": 2048, "min_rsa_bits": 2048, "certificate": "any"})
g = P["gmail-outbound"]["cipher_suites_accepted_inbound_march_2023"]
names = {}
import csv
for row in csv.DictReader(open(sys.argv[1] + "/tls-cipher-suites.csv")): names[row["name"]] = row["code"].lower()
gl = [names[n] for n in g["TLS1.3"] + g["TLS1.2"]]
write("gmail", {
    "id": "gmail", "name": "Gmail (Google Workspace) outbound",
    "mta": "gmail", "mta_version": "", "library": "BoringSSL", "level": "may", "derivation": "documented",
    "sources": "Google Workspace Admin Help 9795993 (offers TLS 1.0-1.3, no SSLv3, keeps TLS 1.0/1.1 and 3DES for compatibility); its inbound-accepted suites stand for the outbound list, which the stored copies cut off"},
    {"versions": ["TLSv1.3", "TLSv1.2", "TLSv1.1", "TLSv1.0"], "cipher_suites": gl, "groups": ["0x001d", "0x0017", "0x0018"], "key_shares": ["0x001d"], "sni": True},
    {"min_version": "TLSv1.0", "legacy_signatures": True, "min_dh_bits": 1024, "min_rsa_bits": 1024, "certificate": "any"})
w = P["windows-server-2008-r2"]
write("exchange2010-windows2008r2", {
    "id": "exchange2010-windows2008r2", "name": "Exchange 2010 on Windows Server 2008 R2 (Schannel defaults: TLS 1.0)",
    "mta": "schannel", "mta_version": "", "library": "Schannel (Windows Server 2008 R2)", "level": "may", "derivation": "documented",
    "sources": "Microsoft Learn Schannel cipher-suite order for Windows Server 2008 R2 (shared/data/client-profiles.json windows-server-2008-r2): TLS 1.1/1.2 disabled by default, so the hello offers TLS 1.0 and the suites valid there"},
    {"versions": ["TLSv1.0"], "cipher_suites": [c["code"].lower() for c in w["cipher_suites"] if "TLS 1.0" in c["protocols"] or "SSL 3.0" in c["protocols"]],
     "groups": ["0x0017", "0x0018"], "key_shares": [], "sni": True},
    {"min_version": "SSLv3", "legacy_signatures": True, "min_dh_bits": 1024, "min_rsa_bits": 1024, "certificate": "any"})
