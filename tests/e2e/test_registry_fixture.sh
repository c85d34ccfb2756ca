#!/usr/bin/env bash
# The registry fixture itself, checked with skopeo (no vimport): what the registry source's
# tests stand on must be real and must refuse what a real registry refuses.
#   1. anon, basic, token and http registries start; the test images are built (cached)
#      and pushed; skopeo inspects disk/gzip through each mode with its credentials
#   2. the images are what registry-images.sh says: zstd layer, Docker schema 2 with three
#      layers, a two-architecture OCI index and Docker list, KubeVirt env, bootc label
#   3. basic: a wrong password and no credentials are refused
#   4. token: a wrong password is refused by the issuer; no token, a token signed by
#      another key and an anonymous token for a private repository are refused by the
#      registry itself; an anonymous token for public/... is accepted
#   5. tamper: a blob altered on the registry's storage is served with its old digest,
#      and skopeo refuses it (digest mismatch)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_cmd skopeo curl
tmp=$(e2e_tmpdir)

registry_start anon basic token http
registry_images
registry_push anon
for m in basic token; do registry_push "$m" disk/gzip public/gzip; done
registry_push http disk/gzip

creds=(--creds "$REGISTRY_USER:$REGISTRY_PASS")
certs=(--cert-dir "$REGISTRY_CA_DIR")
inspect() { skopeo inspect --retry-times 0 "$@" 2>"$tmp/skopeo.err"; }

# ---- 1. each mode serves disk/gzip ------------------------------------------------------------
want=$(inspect --raw "${certs[@]}" "docker://$REGISTRY_ANON/disk/gzip:v1" | sha256sum | cut -d' ' -f1)
for m in BASIC TOKEN; do
  var=REGISTRY_$m
  got=$(inspect --raw "${certs[@]}" "${creds[@]}" "docker://${!var}/disk/gzip:v1" | sha256sum | cut -d' ' -f1) ||
    fail "$m: skopeo inspect failed: $(cat "$tmp/skopeo.err")"
  assert_eq "$want" "$got" "$m: manifest of disk/gzip"
done
got=$(inspect --raw --tls-verify=false "docker://$REGISTRY_HTTP/disk/gzip:v1" | sha256sum | cut -d' ' -f1) ||
  fail "http: skopeo inspect failed: $(cat "$tmp/skopeo.err")"
assert_eq "$want" "$got" "http: manifest of disk/gzip"
curl -sf "http://$REGISTRY_HTTP/v2/" >/dev/null || fail "http: /v2/ is not plain http"

# ---- 2. the images -------------------------------------------------------------------------------
raw() { inspect --raw "${certs[@]}" "docker://$REGISTRY_ANON/$1:v1" || fail "inspect $1: $(cat "$tmp/skopeo.err")"; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
assert_eq "['application/vnd.oci.image.layer.v1.tar+zstd']" \
  "$(raw disk/zstd | field '[l["mediaType"] for l in d["layers"]]')" "disk/zstd layers"
assert_eq "['application/vnd.oci.image.layer.v1.tar+gzip']" \
  "$(raw disk/gzip | field '[l["mediaType"] for l in d["layers"]]')" "disk/gzip layers"
assert_eq "application/vnd.docker.distribution.manifest.v2+json 3" \
  "$(raw disk/multi | field 'd["mediaType"], len(d["layers"])' | tr -d "(),'")" "disk/multi"
assert_eq "application/vnd.oci.image.index.v1+json amd64 arm64" \
  "$(raw disk/index | field 'd["mediaType"], *sorted(m["platform"]["architecture"] for m in d["manifests"])' | tr -d "(),'")" \
  "disk/index"
assert_eq "application/vnd.docker.distribution.manifest.list.v2+json amd64 arm64" \
  "$(raw disk/list | field 'd["mediaType"], *sorted(m["platform"]["architecture"] for m in d["manifests"])' | tr -d "(),'")" \
  "disk/list"
inspect --config "${certs[@]}" "docker://$REGISTRY_ANON/disk/env:v1" |
  grep -q '"INSTANCETYPE_KUBEVIRT_IO_DEFAULT_INSTANCETYPE=u1.small"' || fail "disk/env has no instancetype env"
inspect --config "${certs[@]}" "docker://$REGISTRY_ANON/disk/bootc:v1" |
  grep -q '"containers.bootc": "1"' || fail "disk/bootc has no containers.bootc label"
inspect --override-arch arm64 "${certs[@]}" "docker://$REGISTRY_ANON/disk/index:v1" |
  grep -q '"Architecture": "arm64"' || fail "disk/index: no arm64 image"
# the disk in a layer, as pulled by skopeo: the same bytes as the cached disk
skopeo copy -q "--src-cert-dir=$REGISTRY_CA_DIR" "docker://$REGISTRY_ANON/disk/gzip:v1" "dir:$tmp/pulled"
layer=$(raw disk/gzip | field 'd["layers"][0]["digest"][7:]')
tar -xzf "$tmp/pulled/$layer" -C "$tmp" disk/disk.qcow2 2>/dev/null ||
  tar -xzf "$tmp/pulled/$layer" -C "$tmp" ./disk/disk.qcow2
cmp "$tmp/disk/disk.qcow2" "$REGISTRY_IMAGES/disks/disk.qcow2" || fail "disk/gzip: the disk in the layer differs"

# ---- 3. basic auth refuses ------------------------------------------------------------------------
inspect "${certs[@]}" --creds "$REGISTRY_USER:wrong" "docker://$REGISTRY_BASIC/disk/gzip:v1" >/dev/null &&
  fail "basic: a wrong password was accepted"
grep -qi "unauthorized\|authentication required" "$tmp/skopeo.err" || fail "basic, wrong password: $(cat "$tmp/skopeo.err")"
inspect "${certs[@]}" "docker://$REGISTRY_BASIC/disk/gzip:v1" >/dev/null && fail "basic: no credentials accepted"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$REGISTRY_CA" "https://$REGISTRY_BASIC/v2/disk/gzip/manifests/v1")
assert_eq 401 "$code" "basic: manifest without credentials"

# ---- 4. token auth refuses ------------------------------------------------------------------------
inspect "${certs[@]}" --creds "$REGISTRY_USER:wrong" "docker://$REGISTRY_TOKEN/disk/gzip:v1" >/dev/null &&
  fail "token: a wrong password was accepted"
grep -q "invalid username/password" "$tmp/skopeo.err" || fail "token, wrong password: $(cat "$tmp/skopeo.err")"
tail -n 1 "$REGISTRY_TOKEN_LOG" | grep -q '"accepted": false' || fail "token: the issuer did not refuse the password"
url=https://$REGISTRY_TOKEN/v2/disk/gzip/manifests/v1
accept=(-H "Accept: application/vnd.oci.image.manifest.v1+json")
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$REGISTRY_CA" "$url")
assert_eq 401 "$code" "token: manifest without a token"
curl -s -D - -o /dev/null --cacert "$REGISTRY_CA" "$url" | tr -d '\r' |
  grep -qi "^www-authenticate: Bearer realm=\"$REGISTRY_TOKEN_REALM\",service=\"vimport-test-registry\",scope=\"repository:disk/gzip:pull\"" ||
  fail "token: no Bearer challenge naming the issuer"
token() { # token [CURL_ARGS...] SCOPE: ask the issuer
  local scope=${*: -1}
  curl -sf --cacert "$REGISTRY_CA" "${@:1:$#-1}" \
    "$REGISTRY_TOKEN_REALM?service=vimport-test-registry&scope=$scope" | field 'd["token"]'
}
good=$(token -u "$REGISTRY_USER:$REGISTRY_PASS" repository:disk/gzip:pull)
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$REGISTRY_CA" "${accept[@]}" -H "Authorization: Bearer $good" "$url")
assert_eq 200 "$code" "token: manifest with the issuer's token"
anon=$(token repository:disk/gzip:pull)
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$REGISTRY_CA" "${accept[@]}" -H "Authorization: Bearer $anon" "$url")
assert_eq 401 "$code" "token: private repository with an anonymous token"
anon=$(token repository:public/gzip:pull)
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$REGISTRY_CA" "${accept[@]}" -H "Authorization: Bearer $anon" \
  "https://$REGISTRY_TOKEN/v2/public/gzip/manifests/v1")
assert_eq 200 "$code" "token: public repository with an anonymous token"
inspect "${certs[@]}" "docker://$REGISTRY_TOKEN/public/gzip:v1" >/dev/null ||
  fail "token: skopeo without credentials could not read public/gzip: $(cat "$tmp/skopeo.err")"
# the same claims, signed by a key the registry does not trust
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=forger" \
  -keyout "$tmp/forger.key" -out "$tmp/forger.pem" 2>/dev/null
forged=$(/usr/bin/python3 - "$good" "$tmp/forger.key" <<'EOF'
import sys, jwt
claims = jwt.decode(sys.argv[1], options={"verify_signature": False})
header = jwt.get_unverified_header(sys.argv[1])
header.pop("alg", None); header.pop("typ", None)
print(jwt.encode(claims, open(sys.argv[2], "rb").read(), algorithm="ES256", headers=header))
EOF
)
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$REGISTRY_CA" "${accept[@]}" -H "Authorization: Bearer $forged" "$url")
assert_eq 401 "$code" "token: manifest with a forged token"

# ---- 5. tamper ------------------------------------------------------------------------------------
layer=$(raw hostile/tampered | field 'd["layers"][0]["digest"]')
"$E2E_LIB_DIR/registry-images.sh" tamper "$REGISTRY_ANON_ROOT" "$layer"
skopeo copy -q --retry-times 0 "--src-cert-dir=$REGISTRY_CA_DIR" "docker://$REGISTRY_ANON/hostile/tampered:v1" \
  "dir:$tmp/tampered" 2>"$tmp/skopeo.err" && fail "tamper: skopeo accepted the altered blob"
grep -qi "digest" "$tmp/skopeo.err" || fail "tamper: skopeo failed for another reason: $(cat "$tmp/skopeo.err")"
# the other images are untouched
skopeo copy -q --retry-times 0 "--src-cert-dir=$REGISTRY_CA_DIR" "docker://$REGISTRY_ANON/disk/gzip:v1" \
  "dir:$tmp/untouched" || fail "tamper altered disk/gzip too"

pass "registry fixture: 4 modes, images, auth refusals, tamper"
