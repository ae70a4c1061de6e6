#!/usr/bin/env bash
# mkcerts.sh DIR -- generate a small test PKI into DIR with openssl (non-interactive).
#
#   ca.key / ca.pem               root CA            (RSA-2048, CN=hsscan test root CA)
#   int.key / int.pem             intermediate CA    (RSA-2048, signed by root)
#   rsa.key / rsa.pem             RSA-2048 leaf      (signed by intermediate)
#   ecdsa.key / ecdsa.pem         ECDSA P-256 leaf   (signed by intermediate)
#   rsa-chain.pem                 rsa.pem + int.pem           (what a server normally sends)
#   ecdsa-chain.pem               ecdsa.pem + int.pem
#   rsa-fullchain.pem             rsa.pem + int.pem + ca.pem  (3-certificate chain)
#   ecdsa-fullchain.pem           ecdsa.pem + int.pem + ca.pem
#   int-ca.pem                    int.pem + ca.pem            (for s_server -cert_chain)
#   rsa-pkcs1.key                 the RSA leaf key in traditional "BEGIN RSA PRIVATE KEY" form
#   ecdsa-sec1.key                the ECDSA leaf key in "BEGIN EC PRIVATE KEY" form
#
# Leaves: CN=localhost, SAN DNS:localhost, DNS:mx.test.example, IP:127.0.0.1,
# extendedKeyUsage serverAuth+clientAuth. Validity 3650 days, SHA-256 signatures.
#
# Idempotent: if every output file already exists and the chains verify, nothing is
# regenerated (exit 0). Otherwise everything is regenerated. Set MKCERTS_FORCE=1 to force.
set -euo pipefail
DIR=${1:?usage: mkcerts.sh DIR}
OPENSSL=${OPENSSL:-openssl}
mkdir -p "$DIR"
cd "$DIR"

FILES="ca.key ca.pem int.key int.pem rsa.key rsa.pem ecdsa.key ecdsa.pem rsa-chain.pem
ecdsa-chain.pem rsa-fullchain.pem ecdsa-fullchain.pem int-ca.pem rsa-pkcs1.key ecdsa-sec1.key"

if [ -z "${MKCERTS_FORCE:-}" ]; then
  ok=1
  for f in $FILES; do [ -s "$f" ] || { ok=0; break; }; done
  if [ $ok = 1 ] \
     && "$OPENSSL" verify -CAfile ca.pem -untrusted int.pem rsa.pem >/dev/null 2>&1 \
     && "$OPENSSL" verify -CAfile ca.pem -untrusted int.pem ecdsa.pem >/dev/null 2>&1; then
    exit 0
  fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/ca.ext" <<'X'
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
X
cat > "$tmp/int.ext" <<'X'
basicConstraints=critical,CA:TRUE,pathlen:0
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid:always
X
cat > "$tmp/leaf.ext" <<'X'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:localhost,DNS:mx.test.example,IP:127.0.0.1
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid:always
X

O="$OPENSSL"
# keys
"$O" genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out ca.key 2>/dev/null
"$O" genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out int.key 2>/dev/null
"$O" genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key 2>/dev/null
"$O" genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:named_curve -out ecdsa.key 2>/dev/null
"$O" pkey -in rsa.key -traditional -out rsa-pkcs1.key 2>/dev/null || "$O" rsa -in rsa.key -traditional -out rsa-pkcs1.key 2>/dev/null
"$O" ec -in ecdsa.key -out ecdsa-sec1.key 2>/dev/null

# root (self-signed)
"$O" req -new -key ca.key -subj "/O=hsscan test/CN=hsscan test root CA" -out "$tmp/ca.csr"
"$O" x509 -req -in "$tmp/ca.csr" -signkey ca.key -days 3650 -sha256 -set_serial 1 \
     -extfile "$tmp/ca.ext" -out ca.pem 2>/dev/null
# intermediate
"$O" req -new -key int.key -subj "/O=hsscan test/CN=hsscan test intermediate CA" -out "$tmp/int.csr"
"$O" x509 -req -in "$tmp/int.csr" -CA ca.pem -CAkey ca.key -days 3650 -sha256 -set_serial 2 \
     -extfile "$tmp/int.ext" -out int.pem 2>/dev/null
# leaves
"$O" req -new -key rsa.key -subj "/O=hsscan test/CN=localhost" -out "$tmp/rsa.csr"
"$O" x509 -req -in "$tmp/rsa.csr" -CA int.pem -CAkey int.key -days 3650 -sha256 -set_serial 3 \
     -extfile "$tmp/leaf.ext" -out rsa.pem 2>/dev/null
"$O" req -new -key ecdsa.key -subj "/O=hsscan test/CN=localhost" -out "$tmp/ecdsa.csr"
"$O" x509 -req -in "$tmp/ecdsa.csr" -CA int.pem -CAkey int.key -days 3650 -sha256 -set_serial 4 \
     -extfile "$tmp/leaf.ext" -out ecdsa.pem 2>/dev/null

cat rsa.pem int.pem > rsa-chain.pem
cat ecdsa.pem int.pem > ecdsa-chain.pem
cat rsa.pem int.pem ca.pem > rsa-fullchain.pem
cat ecdsa.pem int.pem ca.pem > ecdsa-fullchain.pem
cat int.pem ca.pem > int-ca.pem
chmod 600 ./*.key

"$O" verify -CAfile ca.pem -untrusted int.pem rsa.pem ecdsa.pem >/dev/null
