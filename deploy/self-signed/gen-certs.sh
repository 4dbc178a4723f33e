#!/usr/bin/env bash
# Serving certificate for the kpull webhook on clusters without cert-manager: a self-signed CA and a
# certificate for the Service's DNS names, made with openssl.
#
#   ./gen-certs.sh [--namespace kpull-system] [--service kpull-webhook] [--secret kpull-webhook-tls]
#                  [--webhook-config kpull] [--days 365] [--out DIR] [--ca-cert FILE --ca-key FILE]
#                  [--install | --apply]
#
# Alone it writes DIR/{ca.crt,ca.key,tls.crt,tls.key} (default: ./kpull-certs) and prints the caBundle.
# --install  first install: the namespace, the kpull-webhook-tls Secret, then this overlay with the CA
#            already in both webhook configurations' caBundle (no moment where they exist without it).
# --apply    rotation: replace the Secret and patch caBundle in the existing configurations. kpull serve
#            re-reads the Secret when the kubelet updates the mounted files, without a restart.
# Keep ca.key out of version control; each run makes a new CA unless --ca-cert/--ca-key name one.
set -euo pipefail

namespace=kpull-system
service=kpull-webhook
secret=kpull-webhook-tls
webhook_config=kpull
days=365
out=./kpull-certs
apply=false
install=false
ca_cert=""
ca_key=""

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --namespace) namespace="$2"; shift 2 ;;
    --service) service="$2"; shift 2 ;;
    --secret) secret="$2"; shift 2 ;;
    --webhook-config) webhook_config="$2"; shift 2 ;;
    --days) days="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --ca-cert) ca_cert="$2"; shift 2 ;;
    --ca-key) ca_key="$2"; shift 2 ;;
    --apply) apply=true; shift ;;
    --install) install=true; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gen-certs.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done

command -v openssl >/dev/null || { echo "gen-certs.sh: openssl is required" >&2; exit 1; }
mkdir -p "$out"
umask 077

if [ -n "$ca_cert" ] || [ -n "$ca_key" ]; then
  [ -n "$ca_cert" ] && [ -n "$ca_key" ] || { echo "gen-certs.sh: --ca-cert and --ca-key go together" >&2; exit 2; }
  cp "$ca_cert" "$out/ca.crt"
  cp "$ca_key" "$out/ca.key"
else
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$out/ca.key" -out "$out/ca.crt" -days 3650 \
    -subj "/CN=kpull webhook CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

# The API server dials <service>.<namespace>.svc and requires that name as a SAN (a CN alone is refused).
cat > "$out/server.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:${service}.${namespace}.svc,DNS:${service}.${namespace}.svc.cluster.local,DNS:${service}.${namespace},DNS:${service}
EXT
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$out/tls.key" -out "$out/server.csr" -subj "/CN=${service}.${namespace}.svc" 2>/dev/null
openssl x509 -req -in "$out/server.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
  -days "$days" -extfile "$out/server.ext" -out "$out/tls.crt" 2>/dev/null
rm -f "$out/server.csr" "$out/server.ext" "$out/ca.srl"
openssl verify -CAfile "$out/ca.crt" "$out/tls.crt" >/dev/null

ca_bundle=$(base64 < "$out/ca.crt" | tr -d '\n')
echo "certificates written to $out (CA: ca.crt, serving: tls.crt, tls.key)"

if [ "$apply" != true ] && [ "$install" != true ]; then
  echo "caBundle: $ca_bundle"
  echo "run again with --install (first time) or --apply (rotation) to put them in the cluster"
  exit 0
fi

command -v kubectl >/dev/null || { echo "gen-certs.sh: --install and --apply need kubectl" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
if [ "$install" = true ]; then
  kubectl apply -f "$here/../base/namespace.yaml"
fi
kubectl -n "$namespace" create secret tls "$secret" --cert="$out/tls.crt" --key="$out/tls.key" \
  --dry-run=client -o yaml | kubectl apply -f -
if [ "$install" = true ]; then
  # Each webhook's clientConfig gets the CA before the configuration is created.
  kubectl kustomize "$here" | sed "s/^\( *\)clientConfig:\$/&\\
\1  caBundle: ${ca_bundle}/" | kubectl apply -f -
  echo "installed: Secret $namespace/$secret and the overlay $here with the CA in caBundle"
  exit 0
fi
patch="[{\"op\":\"add\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"${ca_bundle}\"}]"
kubectl patch validatingwebhookconfiguration "$webhook_config" --type=json -p "$patch"
kubectl patch mutatingwebhookconfiguration "$webhook_config" --type=json -p "$patch"
echo "Secret $namespace/$secret applied; caBundle written to the webhook configurations $webhook_config"
