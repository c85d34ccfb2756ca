# tests/e2e/tls-lib.sh: what every e2e server fixture needs, in one place. Sourced (by
# lib.sh, nginx-fixture.sh, registry-fixture.sh, s3-fixture.sh), not run.
#
#   test_ca_make DIR CA_NAME   a test CA made for this run and a server certificate it
#                              signs, in DIR: ca.pem, ca.key; server.pem, server.key
#                              (CN=localhost, SAN DNS:localhost and IP:127.0.0.1); and
#                              ca-dir/ca.crt, the CA alone, as CDI mounts a certConfigMap.
#                              Kept when DIR/server.pem exists (a fixture restarted on the
#                              same state keeps the CA its clients already trust).
#   free_port                  a TCP port free on 127.0.0.1 now; the caller retries if
#                              someone else takes it before it binds

test_ca_make() {
  local dir=$1 name=$2
  mkdir -p "$dir/ca-dir"
  [ -s "$dir/server.pem" ] && return 0
  if ! {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
      -subj "/CN=$name" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout "$dir/ca.key" -out "$dir/ca.pem" &&
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
        -keyout "$dir/server.key" -out "$dir/server.csr" &&
      printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
        >"$dir/server.ext" &&
      openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
        -CAcreateserial -days 2 -extfile "$dir/server.ext" -out "$dir/server.pem"
  } 2>"$dir/openssl.log"; then
    echo "test CA in $dir: openssl failed: $(cat "$dir/openssl.log")" >&2
    rm -f "$dir/server.pem"
    return 1
  fi
  cp "$dir/ca.pem" "$dir/ca-dir/ca.crt"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
