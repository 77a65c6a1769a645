#!/usr/bin/env bash
# A self-signed certificate and key for trying the TLS examples (needs openssl; Debian's
# `openssl` package):
#
#   scripts/make_cert.sh [DIR]            # writes DIR/cert.pem and DIR/key.pem (DIR: .)
#   cargo run --release --features tls --example http_hello -- --tls cert.pem key.pem
#   curl --cacert cert.pem https://localhost:8080/
#   openssl s_client -connect 127.0.0.1:7007 -CAfile cert.pem   # against echo --tls
#
# The certificate names localhost and 127.0.0.1 and lasts 30 days; the key is P-256. It is
# an end-entity certificate (CA:FALSE), which rustls clients insist on (webpki refuses a CA
# certificate as a server's); give it to clients as their trust anchor.
set -euo pipefail
dir=${1:-.}
mkdir -p "$dir"
if ! command -v openssl >/dev/null; then
    echo "make_cert: openssl is needed (apt-get install openssl)" >&2
    exit 1
fi
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -addext "basicConstraints=critical,CA:FALSE" -addext "extendedKeyUsage=serverAuth" \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
echo "wrote $dir/cert.pem and $dir/key.pem"
