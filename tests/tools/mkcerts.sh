#!/bin/sh
# tests/tools/mkcerts.sh OUTDIR: a throwaway CA and a server certificate for
# loopback TLS in tests (127.0.0.1, ::1, localhost). Idempotent.
set -eu
out=${1:?usage: mkcerts.sh OUTDIR}
mkdir -p "$out"
cd "$out"
[ -s ca.pem ] && [ -s server.pem ] && [ -s server-key.pem ] && exit 0
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
  -subj "/CN=mcplink test CA" -keyout ca-key.pem -out ca.pem \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/CN=localhost" -keyout server-key.pem -out server.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext.cnf
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3650 \
  -extfile ext.cnf -out server.pem 2>/dev/null
rm -f server.csr ext.cnf ca.srl
chmod 600 ca-key.pem server-key.pem
