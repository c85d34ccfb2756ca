# tests/e2e/gcs_lib.sh: the GCS stand-in (gcs_standin.py) for the gcs e2e tests. Source it
# after lib.sh:
#
#   gcs_start ROOT [ARGS...]   start tests/e2e/gcs_standin.py (ONE per test file) on
#                              127.0.0.1 over HTTPS with a fresh test CA, serving the
#                              buckets ROOT/BUCKET/ (ARGS go to it: --public-bucket B,
#                              --token-lifetime S); make a service-account key pair it
#                              trusts and another it does not. Exports
#     GCS_HOST        https://127.0.0.1:PORT (the https://HOST/BUCKET/OBJECT form's host)
#     GCS_CA_DIR      a directory holding only the CA (IMPORTER_CERT_DIR, certConfigMap)
#     GCS_SECRET      a directory holding credentials.json (the trusted key), as CDI
#                     mounts the DataVolume's secret at /google
#     GCS_WRONG       the same with a key of the same account the issuer does not know
#     GCS_KEY_MARK    a line of the trusted private key's PEM body, to grep outputs for
#     GCS_LOG         the stand-in's request log (JSON lines)
#   gcs_control BUCKET OBJECT JSON   write the stand-in's fault/lie file for that object
#                              ('' removes it); see gcs_standin.py

gcs_make_key() { # DIR TOKEN_URI: DIR/credentials.json and DIR/key.pem
  local dir=$1 uri=$2
  mkdir -p "$dir"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/key.pem" 2>/dev/null
  openssl pkey -in "$dir/key.pem" -pubout -out "$dir/public.pem"
  /usr/bin/python3 - "$dir" "$uri" <<'PY'
import json, sys
d, uri = sys.argv[1], sys.argv[2]
key = open(d + "/key.pem").read()
json.dump({"type": "service_account", "project_id": "vimport-e2e", "private_key_id": "e2e-key-1",
           "private_key": key, "client_email": "importer@vimport-e2e.iam.gserviceaccount.com",
           "client_id": "100000000000000000001",
           "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": uri,
           "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
           "universe_domain": "googleapis.com"}, open(d + "/credentials.json", "w"), indent=2)
PY
}

gcs_start() {
  local root=$1 state tls pid port
  shift
  require_cmd openssl
  /usr/bin/python3 -c 'import jwt, cryptography, crcmod' 2>/dev/null ||
    skip "python3-jwt, python3-cryptography and python3-crcmod are not installed"
  state=$(mktemp -d "$E2E_TMP/gcs.XXXXXX")
  tls=$state/tls
  test_ca_make "$tls" "vimport gcs test CA" || fail "the GCS stand-in: no test CA"
  # the keys first (the token_uri is filled in once the port is known)
  gcs_make_key "$state/sa" "https://127.0.0.1:0/token"
  /usr/bin/python3 "$E2E_LIB_DIR/gcs_standin.py" --root "$root" --tls-cert "$tls/server.pem" \
    --tls-key "$tls/server.key" --sa-email importer@vimport-e2e.iam.gserviceaccount.com \
    --sa-public-key "$state/sa/public.pem" --port-file "$state/port" --log "$state/requests.log" \
    --timeout "${FAULTSERVER_TIMEOUT:-900}" "$@" </dev/null >"$state/out.log" 2>&1 &
  pid=$!
  e2e_on_exit "kill $pid"
  e2e_wait_port "the GCS stand-in" "$pid" "$state"
  port=$(cat "$state/port")
  GCS_HOST=https://127.0.0.1:$port
  sed -i "s|https://127.0.0.1:0/token|$GCS_HOST/token|" "$state/sa/credentials.json"
  gcs_make_key "$state/wrong" "$GCS_HOST/token"
  GCS_SECRET=$state/sa
  GCS_WRONG=$state/wrong
  GCS_CA_DIR=$tls/ca-dir
  GCS_LOG=$state/requests.log
  GCS_KEY_MARK=$(sed -n 5p "$state/sa/key.pem")
  GCS_ROOT=$root
  export GCS_HOST GCS_SECRET GCS_WRONG GCS_CA_DIR GCS_LOG GCS_KEY_MARK GCS_ROOT
}

gcs_control() {
  local f=$GCS_ROOT/.control/$1/$2.json
  mkdir -p "$(dirname "$f")"
  if [ -z "$3" ]; then rm -f "$f"; else printf '%s\n' "$3" >"$f"; fi
}
