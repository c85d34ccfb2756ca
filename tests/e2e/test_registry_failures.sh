#!/usr/bin/env bash
# The registry source (issue 22): every refusal, against the real registry of
# tests/e2e/registry-fixture.sh, driven by CDI's environment. CDI's words are from
# pkg/importer/transport.go and registry-datasource.go (v1.66); every failure is CDI's
# plain-text "Unable to process data: ..." with exit 1, except a digest mismatch, which is
# CDI's checksum verdict (JSON, exit 0, disk.img removed). No failure may report
# "Import Complete", and no password may appear in vimport's output.
#   1. CDI's rules for the disk: no /disk ("Failed to find VM disk image file in the
#      container image"), two files ("image directory contains more than one file"), the
#      bootc and ostree labels ("bootc image detected")
#   2. platforms: an architecture the index lacks ("no image found in image index for
#      architecture", "... in manifest list ..." for a Docker list), a single-platform image of another architecture (CDI's
#      validateImagePlatformMatch words)
#   3. digests: a layer altered on the registry's storage; a wrong IMPORTER_CHECKSUM;
#      manifests from a registry gone bad (tests/e2e/regproxy.py --manifest-file): not
#      JSON, 6 MiB, another manifest than the @sha256: reference pins
#   4. access: a tag that does not exist, a wrong password (basic and token), no
#      credentials for a private repository behind token auth, a CA that is not trusted,
#      a plain-http registry without INSECURE_TLS
#   5. hostile layers: a name climbing out of disk/ with .., absolute names, the disk as a
#      symlink or a hard link, a gzip bomb (1 GiB of zeros against a 64 MiB volume)
#   6. the network: resets every 200000 bytes (completes, resumed each time); a reset
#      before the first byte of every layer download (fails after bounded retries); one that stalls (YAML
#      spec with stallTimeoutSeconds: 2: a stall once is resumed, a stall before the first byte
#      of every layer download fails after the retries, one on the image config at once)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_cmd skopeo qemu-img sha256sum cmp
tmp=$(e2e_tmpdir)

registry_start anon basic token http
registry_images
registry_push anon
registry_push basic disk/gzip
registry_push token disk/gzip
registry_push http disk/gzip
ca=(IMPORTER_CERT_DIR="$REGISTRY_CA_DIR")
qemu-img convert -f qcow2 -O raw "$REGISTRY_IMAGES/disks/disk.qcow2" "$tmp/oracle.raw"

# no_secrets WHAT: neither the password nor a bearer token in vimport's output
no_secrets() {
  ! grep -qF "$REGISTRY_PASS" "$E2E_TMP/import.stderr" "$E2E_TMP/termination-log" 2>/dev/null ||
    fail "$1: the password is in vimport's output"
  ! grep -qE 'eyJ[A-Za-z0-9_-]{20,}\.' "$E2E_TMP/import.stderr" "$E2E_TMP/termination-log" 2>/dev/null ||
    fail "$1: a bearer token is in vimport's output"
}

# refused WHAT ERE: exit 1, CDI's plain-text shape, the cause matching ERE (extended,
# case-insensitive), not complete
refused() {
  local what=$1 ere=$2
  no_secrets "$what"
  expect_text_failure "$what" '^Unable to process data: '
  grep -qiE -- "$ere" "$E2E_TMP/termination-log" ||
    fail "$what: the message does not say /$ere/: $IMPORT_MSG"
}

reg() { # reg HOST REPO[:TAG|@DIGEST] [VAR=VALUE...]: import under CDI's environment
  local host=$1 ref=$2
  shift 2
  [[ $ref == *[:@]* ]] || ref=$ref:v1
  env_import IMPORTER_SOURCE=registry IMPORTER_ENDPOINT="docker://$host/$ref" "$@"
}

# ---- 1. CDI's rules for the disk ----------------------------------------------------------------
reg "$REGISTRY_ANON" disk/nodisk "${ca[@]}"
refused "no /disk" "Failed to find VM disk image file in the container image"
reg "$REGISTRY_ANON" disk/twofiles "${ca[@]}"
refused "two files in /disk" "image directory contains more than one file"
for repo in disk/bootc disk/ostree; do
  reg "$REGISTRY_ANON" "$repo" "${ca[@]}"
  refused "$repo" "bootc image detected"
done

# ---- 2. platforms --------------------------------------------------------------------------------
# containers/image's words (internal/manifest oci_index.go, docker_schema2_list.go)
for pair in "disk/index:image index" "disk/list:manifest list"; do
  repo=${pair%%:*}
  reg "$REGISTRY_ANON" "$repo" "${ca[@]}" IMPORTER_REGISTRY_IMAGE_ARCHITECTURE=s390x
  refused "$repo for s390x" "no image found in ${pair#*:} for architecture \"s390x\""
done
arch=$(skopeo inspect --retry-times 0 --cert-dir "$REGISTRY_CA_DIR" "docker://$REGISTRY_ANON/disk/gzip:v1" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["Architecture"])')
other=arm64
[ "$arch" != arm64 ] || other=amd64
reg "$REGISTRY_ANON" disk/gzip "${ca[@]}" IMPORTER_REGISTRY_IMAGE_ARCHITECTURE=$other
refused "a $arch image asked for $other" \
  "manifest image architecture: \"$arch\" doesn't match requested architecture: \"$other\""

# ---- 3. digests ----------------------------------------------------------------------------------
layer=$(skopeo inspect --raw --retry-times 0 --cert-dir "$REGISTRY_CA_DIR" "docker://$REGISTRY_ANON/hostile/tampered:v1" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["digest"])')
"$E2E_LIB_DIR/registry-images.sh" tamper "$REGISTRY_ANON_ROOT" "$layer"
reg "$REGISTRY_ANON" hostile/tampered "${ca[@]}"
expect_checksum_verdict "a layer altered on the registry's storage"
import_message | grep -qF "$layer" || fail "tampered layer: the verdict does not name the layer $layer: $IMPORT_MSG"
[ ! -e "$E2E_TMP/disk.img" ] || fail "tampered layer: disk.img is left"

bad=sha256:$(printf '%064d' 0)
reg "$REGISTRY_ANON" disk/gzip "${ca[@]}" IMPORTER_CHECKSUM="$bad"
expect_checksum_verdict "wrong IMPORTER_CHECKSUM"
import_message | grep -qF "expected $bad, calculated sha256:$(cat "$REGISTRY_IMAGES/disk.sha256")" ||
  fail "wrong IMPORTER_CHECKSUM: $IMPORT_MSG"
[ ! -e "$E2E_TMP/disk.img" ] || fail "wrong IMPORTER_CHECKSUM: disk.img is left"

# manifests from a registry gone bad (regproxy answers every manifest request itself)
head -c 3000 /dev/urandom >"$tmp/garbage.manifest"
regproxy_start "$REGISTRY_ANON" --manifest-file "$tmp/garbage.manifest"
reg "$REGPROXY" disk/gzip "${ca[@]}"
refused "a manifest that is not JSON" "JSON|manifest"
python3 - "$tmp/huge.manifest" <<'EOF'
import json, sys
# valid JSON, 6 MiB: over containers/image's 4 MiB limit for manifests
m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
     "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": "sha256:" + "0" * 64, "size": 2},
     "layers": [], "annotations": {"pad": "x" * (6 << 20)}}
open(sys.argv[1], "w").write(json.dumps(m))
EOF
regproxy_start "$REGISTRY_ANON" --manifest-file "$tmp/huge.manifest"
reg "$REGPROXY" disk/gzip "${ca[@]}"
refused "a 6 MiB manifest" "large|big|size|limit|exceed|MiB|bytes"
[ -z "$IMPORT_RSS_KB" ] || [ "$IMPORT_RSS_KB" -le 131072 ] || fail "huge manifest: peak RSS ${IMPORT_RSS_KB} KiB"
# the manifest of disk/zstd served for disk/gzip's digest: valid, but not the pinned bytes
d=$(skopeo inspect --raw --retry-times 0 --cert-dir "$REGISTRY_CA_DIR" "docker://$REGISTRY_ANON/disk/gzip:v1" | sha256sum | cut -d' ' -f1)
skopeo inspect --raw --retry-times 0 --cert-dir "$REGISTRY_CA_DIR" "docker://$REGISTRY_ANON/disk/zstd:v1" >"$tmp/other.manifest"
regproxy_start "$REGISTRY_ANON" --manifest-file "$tmp/other.manifest"
reg "$REGPROXY" "disk/gzip@sha256:$d" "${ca[@]}"
[ "$IMPORT_RC" -ne 0 ] || [[ $(import_json '["message"]' 2>/dev/null) != "Import Complete" ]] ||
  fail "a manifest other than the @sha256: reference names was imported"
grep -qiE "mismatch|digest" "$E2E_TMP/termination-log" ||
  fail "a manifest other than the @sha256: pinned: the message does not say so: $IMPORT_MSG"
[ ! -e "$E2E_TMP/disk.img" ] || fail "a manifest other than the @sha256: pinned: disk.img is left"

# ---- 4. access -----------------------------------------------------------------------------------
reg "$REGISTRY_ANON" disk/gzip:no-such-tag "${ca[@]}"
refused "a missing tag" "manifest unknown|not found|404"
reg "$REGISTRY_BASIC" disk/gzip "${ca[@]}" IMPORTER_ACCESS_KEY_ID="$REGISTRY_USER" IMPORTER_SECRET_KEY=wrong-password
refused "basic auth, wrong password" "unauthori[sz]ed|authentication|credentials|401"
reg "$REGISTRY_BASIC" disk/gzip "${ca[@]}"
refused "basic auth, no credentials" "unauthori[sz]ed|authentication|credentials|401"
: >"$REGISTRY_TOKEN_LOG"
reg "$REGISTRY_TOKEN" disk/gzip "${ca[@]}" IMPORTER_ACCESS_KEY_ID="$REGISTRY_USER" IMPORTER_SECRET_KEY=wrong-password
refused "token auth, wrong password" "unauthori[sz]ed|authentication|credentials|401"
grep -q '"accepted": false' "$REGISTRY_TOKEN_LOG" || fail "token auth: the issuer was not asked with the credentials"
reg "$REGISTRY_TOKEN" disk/gzip "${ca[@]}"
refused "token auth, anonymous, private repository" "unauthori[sz]ed|authentication|credentials|denied|401"
reg "$REGISTRY_ANON" disk/gzip
refused "a CA that is not trusted" "certificate|x509|SSL|TLS"
reg "$REGISTRY_HTTP" disk/gzip "${ca[@]}"
refused "plain http without INSECURE_TLS" "http|TLS|SSL"

# ---- 5. hostile layers ---------------------------------------------------------------------------
tag=$(python3 -c 'import hashlib,os,sys; print(hashlib.sha256(os.path.abspath(sys.argv[1]).encode()).hexdigest()[:12])' \
  "$REGISTRY_IMAGES/crafted/dotdot")
rm -f "/tmp/vimport-escape-$tag"
reg "$REGISTRY_ANON" hostile/dotdot "${ca[@]}"
refused "a tar name with .. out of disk/" 'tainted|\.\./|\.\.'
[ ! -e "/tmp/vimport-escape-$tag" ] || fail "dotdot: a file escaped to /tmp/vimport-escape-$tag"
reg "$REGISTRY_ANON" hostile/absolute "${ca[@]}"
refused "absolute names" "Failed to find VM disk image file|absolute|/disk/disk.qcow2"
[ ! -e /etc/vimport-escape ] || fail "absolute: /etc/vimport-escape was written"
for kind in symlink hardlink; do
  reg "$REGISTRY_ANON" "hostile/$kind" "${ca[@]}"
  refused "the disk as a $kind" "link|not a regular file|Failed to find VM disk image file"
  ! { [ -f "$E2E_TMP/disk.img" ] && grep -q "^root:" "$E2E_TMP/disk.img"; } ||
    fail "$kind: /etc/passwd was imported"
done
start=$(date +%s)
reg "$REGISTRY_ANON" hostile/bomb "${ca[@]}" IMPORTER_IMAGE_SIZE=64Mi
took=$(($(date +%s) - start))
refused "a gzip bomb (1 GiB of zeros, 64 MiB volume)" "larger than the reported available|too (big|large)|exceeds|available"
[ ! -e "$E2E_TMP/disk.img" ] || [ "$(du -k "$E2E_TMP/disk.img" | cut -f1)" -le 66560 ] ||
  fail "gzip bomb: disk.img holds $(du -k "$E2E_TMP/disk.img" | cut -f1) KiB, more than the 64 MiB volume"
[ "$took" -le 60 ] || fail "gzip bomb: took ${took}s"
[ -z "$IMPORT_RSS_KB" ] || [ "$IMPORT_RSS_KB" -le 262144 ] || fail "gzip bomb: peak RSS ${IMPORT_RSS_KB} KiB"

# ---- 6. the network ------------------------------------------------------------------------------
# a reset every 200000 bytes of each answer: every resume makes progress, so it completes
regproxy_start "$REGISTRY_ANON" --reset-at 200000 --times 1000
reg "$REGPROXY" disk/gzip "${ca[@]}"
{ [ "$IMPORT_RC" -eq 0 ] && cmp -s "$tmp/oracle.raw" "$E2E_TMP/disk.img"; } ||
  fail "a reset every 200000 bytes: not completed with the right bytes: $IMPORT_MSG"
# a reset before the first byte of every layer answer: no progress, bounded retries
regproxy_start "$REGISTRY_ANON" --reset-at 0 --times 1000 --min-length 100000
reg "$REGPROXY" disk/gzip "${ca[@]}"
refused "a registry that resets every layer download" "giving up after [0-9]+ failed attempts"
[ "$(grep -c '"path": "/v2/disk/gzip/blobs/' "$REGPROXY_LOG")" -ge 3 ] ||
  fail "resets: the layer was not retried: $(cat "$REGPROXY_LOG")"
[ "$(grep -c '"path": "/v2/disk/gzip/blobs/' "$REGPROXY_LOG")" -le 20 ] ||
  fail "resets: more than 20 blob requests: retries are not bounded"

# stalls need stallTimeoutSeconds, which CDI's environment cannot set: a DataVolume spec
registry_spec() { # registry_spec FILE URL [vimport: LINE...]
  local file=$1 url=$2
  shift 2
  {
    echo "apiVersion: cdi.kubevirt.io/v1beta1"
    echo "kind: DataVolume"
    echo "metadata: {name: registry-e2e}"
    echo "spec:"
    echo "  source:"
    echo "    registry:"
    echo "      url: \"$url\""
    echo "      certConfigMap: test-ca"
    echo "vimport:"
    echo "  terminationMessagePath: $E2E_TMP/termination-log"
    echo "  target: {path: $E2E_TMP/disk.img}"
    echo "  mounts: {certs: $REGISTRY_CA_DIR}"
    echo "  stallTimeoutSeconds: 2"
    echo "  retries: 2"
    local line
    for line in "$@"; do echo "  $line"; done
  } >"$file"
}
regproxy_start "$REGISTRY_ANON" --stall 20 --stall-at 300000 --times 1
registry_spec "$tmp/stall.yaml" "docker://$REGPROXY/disk/gzip:v1"
start=$(date +%s)
import_run "$tmp/stall.yaml"
took=$(($(date +%s) - start))
[ "$IMPORT_RC" -eq 0 ] || fail "one stall: exit $IMPORT_RC: $IMPORT_MSG"
assert_eq "Import Complete" "$(import_json '["message"]')" "one stall: message"
cmp "$tmp/oracle.raw" "$E2E_TMP/disk.img" || fail "one stall: disk.img differs"
[ "$took" -lt 20 ] || fail "one stall: took ${took}s: the 2 s stall timeout did not cut the 20 s stall"
# every layer answer stalls before its first byte: no attempt makes progress, so the
# retries (2, counted between attempts that make none) run out: 3 stalls of 2 s and the
# backoff. A stall after some bytes of every answer is not a failure: each resume gets
# further, as with the resets above.
# spec_through_proxy REGPROXY_ARGS...: import disk/gzip through a regproxy so started,
# with registry_spec's 2 s stall timeout and 2 retries; `took` is how long it ran
spec_through_proxy() {
  regproxy_start "$REGISTRY_ANON" "$@"
  registry_spec "$tmp/proxy.yaml" "docker://$REGPROXY/disk/gzip:v1"
  local start
  start=$(date +%s)
  import_run "$tmp/proxy.yaml"
  took=$(($(date +%s) - start))
  IMPORT_MSG=$(cat "$E2E_TMP/termination-log" 2>/dev/null || true)
}
spec_through_proxy --stall 30 --stall-at 0 --times 1000 --min-length 100000
refused "a registry that stalls every layer download" "giving up after 3 failed attempts.*(stall|no data)"
[ "$took" -lt 20 ] || fail "stall every layer download: took ${took}s"
[ "$(grep -c '"path": "/v2/disk/gzip/blobs/' "$REGPROXY_LOG")" -eq 4 ] ||
  fail "stall every layer download: not 1 config and 3 layer requests: $(cat "$REGPROXY_LOG")"
# the image config stalls: a document request is cut by the same stall timeout (not
# waited out: 30 s here, the whole-request limit of 120 s on a registry that hangs) and
# retried as the blobs are: 3 attempts of 2 s and the backoff
spec_through_proxy --stall 30 --stall-at 0 --times 1000
refused "a registry that stalls on the image config" "giving up after 3 failed attempts.*sent nothing for too long.*stallTimeoutSeconds"
[ "$took" -lt 18 ] || fail "stall on the image config: took ${took}s (stallTimeoutSeconds is 2)"
# a registry that answers 503 now and then (a load balancer): the ping and manifest
# requests are retried, and the import completes
spec_through_proxy --document-status 503 --document-times 2
[ "$IMPORT_RC" -eq 0 ] && cmp -s "$tmp/oracle.raw" "$E2E_TMP/disk.img" ||
  fail "two 503s from the registry: not completed with the right bytes: $IMPORT_MSG"
assert_eq 2 "$(grep -c '"status": 503' "$REGPROXY_LOG")" "two 503s: the proxy's count"
# ...and one that always does: bounded, and the message says what happened
spec_through_proxy --document-status 503 --document-times 1000
refused "a registry that answers 503 to every document request" "giving up after 3 failed attempts.*HTTP 503"
assert_eq 3 "$(grep -c '"status": 503' "$REGPROXY_LOG")" "503 forever: 1 attempt and 2 retries"
[ "$took" -lt 15 ] || fail "503 forever: took ${took}s"

pass "registry refusals: disk rules, platforms, digests, access, hostile layers, network"
