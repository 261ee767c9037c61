#!/usr/bin/env bash
# Makes the certificates of a cluster whose port is TLS with peer
# authentication ([openssl] in cluster.conf): one CA for the cluster, and a
# certificate signed by it for each name given (a member, or the operator's
# CLI). Each member then trusts exactly the certificates this CA signed.
#   bash examples/tls/make-certs.sh DIR n1 n2 n3 cli
# writes DIR/ca.pem and DIR/ca.key (keep ca.key off the members), and
# DIR/NAME.pem and DIR/NAME.key for each NAME (mode 0600 keys). An existing
# CA in DIR is reused, so more members can be added later. EC P-256 keys,
# valid 825 days.
set -euo pipefail
dir=${1:?usage: make-certs.sh DIR NAME...}
shift
mkdir -p "$dir"
umask 077
if [[ ! -f "$dir/ca.pem" ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" -days 825 \
    -subj "/CN=seckill cluster CA" 2>/dev/null
fi
for name in "$@"; do
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dir/$name.key" -out "$dir/$name.csr" -subj "/CN=$name" 2>/dev/null
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -out "$dir/$name.pem" -days 825 2>/dev/null
  rm -f "$dir/$name.csr"
done
chmod 0644 "$dir"/*.pem
