#!/usr/bin/env bash
# The registry source (issue 22), successful imports from a real registry (Debian's
# docker-registry, tests/e2e/registry-fixture.sh) of containerDisks built with podman
# (tests/e2e/registry-images.sh), driven by CDI's environment as its importer pod is
# (IMPORTER_SOURCE=registry, IMPORTER_ENDPOINT=docker://..., IMPORTER_CERT_DIR, ...).
# Every import must leave exactly the bytes of `qemu-img convert -O raw` of the disk file
# that was put in the image, and report the manifest and layer digests it checked.
#   1. anonymous over TLS with the test CA: gzip layer (OCI manifest), zstd layer, Docker
#      schema 2, the multi-layer image (disk in the lowest layer: only it is read), a
#      @sha256: reference, IMPORTER_CHECKSUM of the disk file
#   2. the two-architecture OCI index and Docker manifest list: the machine's platform by
#      default, arm64 by IMPORTER_REGISTRY_IMAGE_ARCHITECTURE (its own disk)
#   3. KubeVirt env in the image config -> termination-message labels (CDI's envsToLabels)
#   4. htpasswd basic auth with IMPORTER_ACCESS_KEY_ID/IMPORTER_SECRET_KEY
#   5. token auth: credentials go to the issuer, which the registry trusts; anonymous
#      token for public/...; the password is in no message or log
#   6. INSECURE_TLS=true: plain http, and TLS without the CA
#   7. blobs redirected to another host name: followed, without the Authorization header
#   8. a connection reset mid-blob: resumed with Range, same bytes
#   9. the one-line import, `vimport import docker://... TARGET --cert-dir DIR`
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_cmd skopeo qemu-img sha256sum cmp
tmp=$(e2e_tmpdir)

registry_start anon basic token http
registry_images
registry_push anon
registry_push basic disk/gzip
registry_push token disk/gzip public/gzip
registry_push http disk/gzip
disks=$REGISTRY_IMAGES/disks
disk_sum=sha256:$(cat "$REGISTRY_IMAGES/disk.sha256")
# the oracle: qemu-img's conversion of the very disk file that is in the images
qemu-img convert -f qcow2 -O raw "$disks/disk.qcow2" "$tmp/oracle.raw"
qemu-img convert -f qcow2 -O raw "$disks/disk-arm64.qcow2" "$tmp/oracle-arm64.raw"
cmp -s "$tmp/oracle.raw" "$tmp/oracle-arm64.raw" && fail "the two architectures' disks are the same"

skopeo_raw() { # skopeo_raw HOST REPO [ARGS...]: the manifest as the registry serves it
  local host=$1 repo=$2
  shift 2
  skopeo inspect --raw --retry-times 0 --cert-dir "$REGISTRY_CA_DIR" "$@" "docker://$host/$repo:v1"
}
digest_of() { skopeo_raw "$@" | sha256sum | sed 's/^/sha256:/; s/ .*//'; }
layers_of() { # the manifest's layer digests, as a Python list
  skopeo_raw "$@" | python3 -c 'import json,sys; print([l["digest"] for l in json.load(sys.stdin)["layers"]])'
}
ca=(IMPORTER_CERT_DIR="$REGISTRY_CA_DIR")
creds=(IMPORTER_ACCESS_KEY_ID="$REGISTRY_USER" IMPORTER_SECRET_KEY="$REGISTRY_PASS")

# expect_disk WHAT ORACLE: completed, the target is the oracle's bytes
expect_disk() {
  local what=$1 oracle=$2
  [ "$IMPORT_RC" -eq 0 ] || fail "$what: exit $IMPORT_RC: $IMPORT_MSG; stderr: $(tail -n 3 "$E2E_TMP/import.stderr")"
  assert_eq "Import Complete" "$(import_json '["message"]')" "$what: message"
  [ -f "$E2E_TMP/disk.img" ] || fail "$what: no disk.img"
  assert_eq "$(stat -c %s "$oracle")" "$(stat -c %s "$E2E_TMP/disk.img")" "$what: size of disk.img"
  cmp "$oracle" "$E2E_TMP/disk.img" || fail "$what: disk.img differs from qemu-img convert of the disk file"
}

# expect_registry WHAT MANIFEST_DIGEST LAYERS [DISK_FILE]: the vimport.registry report
expect_registry() {
  local what=$1 manifest=$2 layers=$3 file=${4:-disk/disk.qcow2}
  assert_eq "$manifest" "$(import_json '["vimport"]["registry"]["manifestDigest"]')" "$what: manifestDigest"
  assert_eq "$layers" "$(import_json '["vimport"]["registry"]["layerDigests"]')" "$what: layerDigests"
  assert_eq "$file" "$(import_json '["vimport"]["registry"]["diskFile"]')" "$what: diskFile"
}

# ---- 1. anonymous over TLS ----------------------------------------------------------------------
for repo in disk/gzip disk/zstd disk/docker; do
  env_import IMPORTER_SOURCE=registry IMPORTER_ENDPOINT="docker://$REGISTRY_ANON/$repo:v1" "${ca[@]}"
  expect_disk "$repo" "$tmp/oracle.raw"
  expect_registry "$repo" "$(digest_of "$REGISTRY_ANON" "$repo")" "$(layers_of "$REGISTRY_ANON" "$repo")"
  # the blobs' digests prove the disk file: it is hashed again only when a checksum asks
  assert_eq "absent" "$(import_json '.get("vimport", {}).get("sourceDigest", "absent")')" \
    "$repo: sourceDigest with no checksum"
  grep -q 'proven by its blob digests, not hashed again' "$E2E_TMP/import.stderr" ||
    fail "$repo: the log does not say why the disk file was not hashed: $(grep digest "$E2E_TMP/import.stderr")"
  assert_eq "{}" "$(import_json '.get("labels", {})')" "$repo: labels"
done

# multi-layer: the disk is in the lowest layer, so that one alone is read
repo=disk/multi
env_import IMPORTER_SOURCE=registry IMPORTER_ENDPOINT="docker://$REGISTRY_ANON/$repo:v1" "${ca[@]}"
expect_disk "$repo" "$tmp/oracle.raw"
first=$(layers_of "$REGISTRY_ANON" "$repo" | python3 -c 'import ast,sys; print(ast.literal_eval(sys.stdin.read())[:1])')
expect_registry "$repo" "$(digest_of "$REGISTRY_ANON" "$repo")" "$first"

# by digest, with the disk file's checksum
d=$(digest_of "$REGISTRY_ANON" disk/gzip)
env_import IMPORTER_SOURCE=registry IMPORTER_ENDPOINT="docker://$REGISTRY_ANON/disk/gzip@$d" "${ca[@]}" \
  IMPORTER_CHECKSUM="$disk_sum"
expect_disk "disk/gzip@$d" "$tmp/oracle.raw"
assert_eq "$d" "$(import_json '["vimport"]["registry"]["manifestDigest"]')" "@sha256: manifestDigest"
import_json '["vimport"]["verified"]' | grep -q "'checksum'" ||
  fail "IMPORTER_CHECKSUM was not verified: $(import_json '["vimport"]["verified"]')"
assert_eq "$disk_sum" "$(import_json '["vimport"]["sourceDigest"]')" "with a checksum: sourceDigest is the disk file's"
# and a wrong one is the checksum verdict: the disk file is hashed, not merely counted
env_import IMPORTER_SOURCE=registry IMPORTER_ENDPOINT="docker://$REGISTRY_ANON/disk/gzip@$d" "${ca[@]}" \
  IMPORTER_CHECKSUM="sha256:$(printf '0%.0s' $(seq 64))"
import_json '["message"]' | grep -q "checksum mismatch: expected sha256:0000" ||
  fail "a wrong IMPORTER_CHECKSUM: $(import_json '["message"]')"

# ---- 2. platforms --------------------------------------------------------------------------------
case $(uname -m) in
  x86_64) native=amd64 native_oracle=$tmp/oracle.raw ;;
  aarch64) native=arm64 native_oracle=$tmp/oracle-arm64.raw ;;
  *) native="" ;;
esac
for repo in disk/index disk/list; do
  if [ -n "$native" ]; then
    env_import IMPORTER_SOURCE=registry IMPORTER_ENDPOINT="docker://$REGISTRY_ANON/$repo:v1" "${ca[@]}"
    expect_disk "$repo, the machine's platform ($native)" "$native_oracle"
  fi
  env_import IMPORTER_SOURCE=registry IMPORTER_ENDPOINT="docker://$REGISTRY_ANON/$repo:v1" "${ca[@]}" \
    IMPORTER_REGISTRY_IMAGE_ARCHITECTURE=arm64
  expect_disk "$repo, arm64" "$tmp/oracle-arm64.raw"
  arm=$(skopeo_raw "$REGISTRY_ANON" "$repo" | python3 -c 'import json,sys
print([m["digest"] for m in json.load(sys.stdin)["manifests"] if m["platform"]["architecture"] == "arm64"][0])')
  index=$(digest_of "$REGISTRY_ANON" "$repo")
  # manifestDigest: the arm64 image's own manifest; indexDigest: the reference's (what
  # @sha256: pins and DataImportCron tracks)
  assert_eq "$arm" "$(import_json '["vimport"]["registry"]["manifestDigest"]')" "$repo: manifestDigest"
  assert_eq "$index" "$(import_json '["vimport"]["registry"]["indexDigest"]')" "$repo: indexDigest"
done
env_import IMPORTER_SOURCE=registry IMPORTER_ENDPOINT="docker://$REGISTRY_ANON/disk/gzip:v1" "${ca[@]}"
expect_disk disk/gzip "$tmp/oracle.raw"
assert_eq False "$(import_json '["vimport"]["registry"].__contains__("indexDigest")')" \
  "disk/gzip (no index): indexDigest"


# ---- 3. KubeVirt env -> labels -------------------------------------------------------------------
env_import IMPORTER_SOURCE=registry IMPORTER_ENDPOINT="docker://$REGISTRY_ANON/disk/env:v1" "${ca[@]}"
expect_disk disk/env "$tmp/oracle.raw"
assert_eq "{'instancetype.kubevirt.io/default-instancetype': 'u1.small', 'preference.kubevirt.io/default-preference': 'fedora'}" \
  "$(import_json '["labels"]' | python3 -c 'import ast,sys; print(dict(sorted(ast.literal_eval(sys.stdin.read()).items())))')" \
  "disk/env: labels"

# ---- 4. basic auth -------------------------------------------------------------------------------
env_import IMPORTER_SOURCE=registry IMPORTER_ENDPOINT="docker://$REGISTRY_BASIC/disk/gzip:v1" "${ca[@]}" "${creds[@]}"
expect_disk "basic auth" "$tmp/oracle.raw"

# ---- 5. token auth -------------------------------------------------------------------------------
: >"$REGISTRY_TOKEN_LOG"
env_import IMPORTER_SOURCE=registry IMPORTER_ENDPOINT="docker://$REGISTRY_TOKEN/disk/gzip:v1" "${ca[@]}" "${creds[@]}"
expect_disk "token auth" "$tmp/oracle.raw"
grep -q '"scope": \["repository:disk/gzip:pull"\].*"accepted": true' "$REGISTRY_TOKEN_LOG" ||
  fail "token auth: no accepted token request for repository:disk/gzip:pull: $(cat "$REGISTRY_TOKEN_LOG")"
grep -qF "$REGISTRY_PASS" "$E2E_TMP/import.stderr" "$E2E_TMP/termination-log" &&
  fail "token auth: the password is in vimport's output"
env_import IMPORTER_SOURCE=registry IMPORTER_ENDPOINT="docker://$REGISTRY_TOKEN/public/gzip:v1" "${ca[@]}"
expect_disk "token auth, anonymous, public repository" "$tmp/oracle.raw"

# ---- 6. INSECURE_TLS ----------------------------------------------------------------------------
env_import IMPORTER_SOURCE=registry IMPORTER_ENDPOINT="docker://$REGISTRY_HTTP/disk/gzip:v1" INSECURE_TLS=true
expect_disk "plain http with INSECURE_TLS" "$tmp/oracle.raw"
env_import IMPORTER_SOURCE=registry IMPORTER_ENDPOINT="docker://$REGISTRY_ANON/disk/gzip:v1" INSECURE_TLS=true
expect_disk "TLS without the CA, INSECURE_TLS" "$tmp/oracle.raw"

# ---- 7. redirected blobs -------------------------------------------------------------------------
REGPROXY_UPSTREAM_AUTH=$REGISTRY_USER:$REGISTRY_PASS regproxy_start "$REGISTRY_BASIC" --redirect-blobs
env_import IMPORTER_SOURCE=registry IMPORTER_ENDPOINT="docker://$REGPROXY/disk/gzip:v1" "${ca[@]}" "${creds[@]}"
expect_disk "blobs redirected to another host" "$tmp/oracle.raw"
grep -q '"path": "/_blob/v2/disk/gzip/blobs/' "$REGPROXY_LOG" || fail "redirect: the blob was not fetched from the redirect"
grep '"path": "/_blob/' "$REGPROXY_LOG" | grep -q '"authorization": true' &&
  fail "redirect: the Authorization header followed the redirect to another host"
grep '"host": "127.0.0.1' "$REGPROXY_LOG" | grep -q '"authorization": true' ||
  fail "redirect: no request to the registry carried the credentials (is auth tested at all?)"

# ---- 8. a reset mid-blob is resumed --------------------------------------------------------------
regproxy_start "$REGISTRY_ANON" --reset-at 1000000
env_import IMPORTER_SOURCE=registry IMPORTER_ENDPOINT="docker://$REGPROXY/disk/gzip:v1" "${ca[@]}"
expect_disk "reset at byte 1000000 of the layer" "$tmp/oracle.raw"
grep '"path": "/v2/disk/gzip/blobs/' "$REGPROXY_LOG" | grep -q '"range": "bytes=' ||
  fail "reset: the layer was not resumed with a Range request: $(cat "$REGPROXY_LOG")"

# ---- 9. the one-line import: docker:// with --cert-dir ------------------------------------------
# refused without the CA; with it, the oracle's bytes and a summary naming the manifest
set +e
timeout 120 "$VIMPORT" import "docker://$REGISTRY_ANON/disk/gzip:v1" "$tmp/cli.img" >"$tmp/out" 2>"$tmp/err"
rc=$?
set -e
assert_eq 1 "$rc" "one-line docker:// without --cert-dir: exit code"
grep -qi certificate "$tmp/err" || fail "one-line docker:// without --cert-dir: $(cat "$tmp/err")"
timeout 120 "$VIMPORT" import "docker://$REGISTRY_ANON/disk/gzip:v1" "$tmp/cli.img" \
  --cert-dir "$REGISTRY_CA_DIR" >"$tmp/out" 2>"$tmp/err" ||
  fail "one-line docker:// with --cert-dir: $(tail -n 3 "$tmp/err")"
grep -qE "^$tmp/cli.img: [0-9]+ bytes \(qcow2\) in [0-9.]+ s, image $(digest_of "$REGISTRY_ANON" disk/gzip), block hash sha256:[0-9a-f]{64}\$" \
  "$tmp/out" || fail "one-line docker:// summary: $(cat "$tmp/out")"
cmp "$tmp/oracle.raw" "$tmp/cli.img" || fail "one-line docker://: the target differs from qemu-img convert of the disk file"

pass "registry imports: anon/basic/token/http, gzip/zstd/docker/multi/index/list, labels, redirect, resume, one-line"
