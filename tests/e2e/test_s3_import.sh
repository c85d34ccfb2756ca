#!/usr/bin/env bash
# The s3 source against a server that checks every signature: moto's server with its IAM
# checks on (tests/e2e/s3-fixture.sh, started once for the whole file), driven by CDI's
# environment as its importer pod is (IMPORTER_SOURCE=s3, IMPORTER_ENDPOINT=http://HOST/
# BUCKET/KEY, IMPORTER_ACCESS_KEY_ID / IMPORTER_SECRET_KEY) and by a spec (spec.source.s3).
#   1. raw, qcow2, compressed qcow2, streamOptimized vmdk and xz, streamed with no scratch
#      space: each target equals `qemu-img convert -O raw` of the object, read back; the
#      object's own digest is checked in the same pass (x-amz-checksum-sha256, else its
#      single-part ETag, the MD5) and the message says so; a multipart ETag is not used
#   2. a wrong secret is refused by the server (SignatureDoesNotMatch): signatures are
#      checked; no secret: AccessDenied; a missing key and bucket: one line naming both
#   3. a reset mid-body: the resume (Range, If-Match, a new signature) is accepted and the
#      bytes are the same
#   4. the object replaced while the transfer is held mid-body: the resume's If-Match is
#      refused (412) and the import fails saying the object changed
#   5. the one-line import, `vimport import s3://BUCKET/KEY TARGET`, with the AWS CLI's
#      variables (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY); anonymous
#      refused by the server; half a key pair, a session token, an endpoint with a path
#      refused before a request
#   6. the secret is in no log, message or termination message of any of these
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_cmd qemu-img cmp xz curl
tmp=$(e2e_tmpdir)
s3_start
s3tool mkbucket imgs >/dev/null

corpus=$tmp/corpus
mkdir -p "$corpus"
"$VIMPORT_TOP/hack/make-test-image.sh" "$corpus/disk.raw" 32 2>/dev/null
qemu-img convert -f raw -O qcow2 "$corpus/disk.raw" "$corpus/disk.qcow2"
qemu-img convert -f raw -O qcow2 -c "$corpus/disk.raw" "$corpus/disk-compressed.qcow2"
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$corpus/disk.raw" "$corpus/disk.vmdk"
xz -T1 -0 -k -c "$corpus/disk.raw" >"$corpus/disk.raw.xz"
qemu-img convert -f raw -O raw "$corpus/disk.raw" "$corpus/oracle.raw"

outputs=$tmp/outputs # every stderr and termination message, grepped for the secret at the end
mkdir -p "$outputs"
n_out=0
keep_outputs() {
  n_out=$((n_out + 1))
  cp "$E2E_TMP/import.stderr" "$outputs/$n_out.stderr"
  cp "$E2E_TMP/termination-log" "$outputs/$n_out.msg" 2>/dev/null || true
}

s3_import() { # s3_import URL [KEY_ID SECRET]: CDI's environment of an s3 DataVolume
  local url=$1 id=${2-$S3_KEY_ID} secret=${3-$S3_SECRET}
  rm -f "$E2E_TMP/disk.img"
  env_import IMPORTER_SOURCE=s3 IMPORTER_ENDPOINT="$url" IMPORTER_ACCESS_KEY_ID="$id" \
    IMPORTER_SECRET_KEY="$secret" IMPORTER_CONTENTTYPE=kubevirt
  keep_outputs
}

echo "$(date +%T) 1. every format, streamed" >&2
# ---- 1. every format, streamed -----------------------------------------------------------
start=$(date +%s)
while read -r file format checksum; do
  opt=()
  [ "$checksum" = sha256 ] && opt=(--checksum)
  etag=$(s3tool put imgs "dir/$file" "$corpus/$file" "${opt[@]}")
  s3_import "$S3_ENDPOINT/imgs/dir/$file"
  [ "$IMPORT_RC" -eq 0 ] || fail "$file: exit $IMPORT_RC: $IMPORT_MSG"
  assert_eq "Import Complete" "$(import_json '["message"]')" "$file"
  assert_eq "$format" "$(import_json '["vimport"]["format"]')" "$file: format"
  cmp "$E2E_TMP/disk.img" "$corpus/oracle.raw" || fail "$file: the target differs from qemu-img's raw"
  verified=$(import_json '["vimport"]["verified"]')
  case $verified in *object-checksum*blockhash-readback*) ;; *) fail "$file: verified $verified" ;; esac
  if [ "$checksum" = sha256 ]; then
    want=sha256:$(sha256sum "$corpus/$file" | cut -d' ' -f1)
    grep -q "x-amz-checksum-sha256 names $want" "$E2E_TMP/import.stderr" ||
      fail "$file: the object's x-amz-checksum-sha256 was not used"
  else
    want=md5:$(md5sum "$corpus/$file" | cut -d' ' -f1)
    assert_eq "\"${want#md5:}\"" "$etag" "$file: moto's ETag is the MD5"
    grep -q "ETag names $want" "$E2E_TMP/import.stderr" || fail "$file: the ETag was not used"
  fi
  assert_eq "$want" "$(import_json '["vimport"]["sourceDigest"]')" "$file: source digest"
  grep -q "scratch" "$outputs/$n_out.msg" && grep -q '"scratchSpaceRequired":true' "$outputs/$n_out.msg" &&
    fail "$file asked for scratch space"
done <<'LIST'
disk.raw raw sha256
disk.qcow2 qcow2 etag
disk-compressed.qcow2 qcow2 sha256
disk.vmdk vmdk etag
disk.raw.xz raw etag
LIST
echo "formats: $(($(date +%s) - start)) s"

# a multipart object's ETag is no MD5 of its bytes: imported, no object checksum claimed
s3tool multipart imgs dir/multi.raw "$corpus/disk.raw" >/dev/null
s3_import "$S3_ENDPOINT/imgs/dir/multi.raw"
[ "$IMPORT_RC" -eq 0 ] || fail "multipart: exit $IMPORT_RC: $IMPORT_MSG"
cmp "$E2E_TMP/disk.img" "$corpus/oracle.raw" || fail "multipart: the target differs"
case $(import_json '["vimport"]["verified"]') in *object-checksum*) fail "multipart: claims an object checksum" ;; esac

# the same object from a spec: spec.source.s3 with its secretRef mounted as files
mkdir -p "$tmp/secret"
printf %s "$S3_KEY_ID" >"$tmp/secret/accessKeyId"
printf %s "$S3_SECRET" >"$tmp/secret/secretKey"
cat >"$tmp/spec.yaml" <<YAML
apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata: {name: s3}
spec:
  source:
    s3:
      url: "$S3_ENDPOINT/imgs/dir/disk.qcow2"
      secretRef: s3-credentials
  storage: {resources: {requests: {storage: 64Mi}}}
vimport:
  terminationMessagePath: $E2E_TMP/termination-log
  target: {path: $E2E_TMP/disk.img}
  mounts: {secret: $tmp/secret}
YAML
rm -f "$E2E_TMP/disk.img"
import_run "$tmp/spec.yaml"
keep_outputs
[ "$IMPORT_RC" -eq 0 ] || fail "spec.source.s3: exit $IMPORT_RC: $IMPORT_MSG"
cmp -n "$(stat -c %s "$corpus/oracle.raw")" "$E2E_TMP/disk.img" "$corpus/oracle.raw" ||
  fail "spec.source.s3: the target differs"

echo "$(date +%T) 2. refusals, in the server's words" >&2
# ---- 2. refusals, in the server's words --------------------------------------------------
wrong=${S3_SECRET%????}WRNG
s3_import "$S3_ENDPOINT/imgs/dir/disk.raw" "$S3_KEY_ID" "$wrong"
expect_text_failure "a wrong secret" '^Unable to connect to s3 data source: '
grep -q 'SignatureDoesNotMatch' <<<"$IMPORT_MSG" || fail "a wrong secret: $IMPORT_MSG"
grep -q 'bucket "imgs"' <<<"$IMPORT_MSG" || fail "a wrong secret: no bucket: $IMPORT_MSG"
grep -qF "$wrong" "$outputs/$n_out.stderr" "$outputs/$n_out.msg" && fail "the wrong secret was printed"

s3_import "$S3_ENDPOINT/imgs/dir/disk.raw" "" ""
[ "$IMPORT_RC" -ne 0 ] || fail "anonymous access to a private object succeeded"
grep -q 'HTTP 403' <<<"$IMPORT_MSG" || fail "anonymous: $IMPORT_MSG"

s3_import "$S3_ENDPOINT/imgs/dir/missing.img"
grep -q 'NoSuchKey' <<<"$IMPORT_MSG" && grep -q '"dir/missing.img" in bucket "imgs"' <<<"$IMPORT_MSG" ||
  fail "a missing key: $IMPORT_MSG"
s3_import "$S3_ENDPOINT/nobucket/dir/disk.raw"
grep -q 'NoSuchBucket' <<<"$IMPORT_MSG" || fail "a missing bucket: $IMPORT_MSG"
[ "$(wc -l <<<"$IMPORT_MSG")" -eq 1 ] || fail "the error is not one line: $IMPORT_MSG"

echo "$(date +%T) 3. a reset mid-body, resumed with a new signature" >&2
# ---- 3. a reset mid-body, resumed with a new signature -----------------------------------
s3proxy_start --reset-at 3000000
s3_import "http://127.0.0.1:$S3PROXY_PORT/imgs/dir/disk.raw"
[ "$IMPORT_RC" -eq 0 ] || fail "after a reset: exit $IMPORT_RC: $IMPORT_MSG"
cmp "$E2E_TMP/disk.img" "$corpus/oracle.raw" || fail "after a reset: the target differs"
grep -q '"reset": true' "$S3PROXY_LOG" || fail "the proxy did not reset: $(cat "$S3PROXY_LOG")"
grep -q '"range": true, "if_match": true, "authorization": true' "$S3PROXY_LOG" ||
  fail "no signed If-Match resume: $(cat "$S3PROXY_LOG")"
grep -qi '206 Partial Content' "$S3PROXY_LOG" || fail "the server refused the resume: $(cat "$S3PROXY_LOG")"
grep -q 'retrying from byte' "$E2E_TMP/import.stderr" || fail "no resume logged"

echo "$(date +%T) 4. the object replaced mid-transfer" >&2
# ---- 4. the object replaced mid-transfer -------------------------------------------------
s3tool put imgs dir/changing.raw "$corpus/disk.raw" >/dev/null
{ head -c 1000000 /dev/urandom; tail -c +1000001 "$corpus/disk.raw"; } >"$corpus/other.raw"
s3proxy_start --reset-at 3000000 --hold-file "$tmp/release"
( s3_import "http://127.0.0.1:$S3PROXY_PORT/imgs/dir/changing.raw"; echo "$IMPORT_RC" >"$tmp/held.rc";
  cp "$E2E_TMP/termination-log" "$tmp/held.msg" ) &
held=$!
for _ in $(seq 300); do grep -q '"held"' "$S3PROXY_LOG" 2>/dev/null && break; sleep 0.1; done
grep -q '"held"' "$S3PROXY_LOG" || fail "the transfer was never held"
s3tool put imgs dir/changing.raw "$corpus/other.raw" >/dev/null
touch "$tmp/release"
wait "$held"
[ "$(cat "$tmp/held.rc")" -ne 0 ] || fail "an object replaced mid-transfer was imported"
msg=$(cat "$tmp/held.msg")
grep -q 'changed since the import started' <<<"$msg" || fail "replaced object: $msg"
grep -q '412\|PreconditionFailed' <<<"$msg" || fail "replaced object, not refused by If-Match: $msg"
grep -q '"if_match": true' "$S3PROXY_LOG" || fail "no If-Match sent: $(cat "$S3PROXY_LOG")"

echo "$(date +%T) 5. the one-line import of s3://BUCKET/KEY" >&2
# ---- 5. vimport import s3://BUCKET/KEY TARGET, with the AWS CLI's environment -------------
# A key with a space: percent-encoded into the path and signed as S3 expects.
s3tool put imgs "dir/one line.qcow2" "$corpus/disk.qcow2" >/dev/null
oneline() { # oneline TARGET [VAR=VALUE...]: the import under a clean AWS environment
  local target=$1
  shift
  n_out=$((n_out + 1))
  set +e
  env -u AWS_REGION -u AWS_DEFAULT_REGION -u AWS_SESSION_TOKEN -u AWS_ENDPOINT_URL_S3 \
    AWS_ENDPOINT_URL="$S3_ENDPOINT" "$@" timeout 120 "$VIMPORT" import \
    "s3://imgs/dir/one line.qcow2" "$target" >"$outputs/$n_out.stdout" 2>"$outputs/$n_out.stderr"
  ONELINE_RC=$?
  set -e
  ONELINE_ERR=$(tail -1 "$outputs/$n_out.stderr")
}
oneline "$tmp/s3line.img" AWS_ACCESS_KEY_ID="$S3_KEY_ID" AWS_SECRET_ACCESS_KEY="$S3_SECRET"
[ "$ONELINE_RC" -eq 0 ] || fail "one-line s3 import: exit $ONELINE_RC: $ONELINE_ERR"
cmp -n "$(stat -c %s "$corpus/oracle.raw")" "$corpus/oracle.raw" "$tmp/s3line.img" ||
  fail "one-line s3 import differs from qemu-img convert"
grep -q "^$tmp/s3line.img: .* block hash sha256:" "$outputs/$n_out.stdout" ||
  fail "no summary line: $(cat "$outputs/$n_out.stdout")"
oneline "$tmp/s3anon.img" # no keys: anonymous, and this server refuses it
[ "$ONELINE_RC" -eq 1 ] || fail "anonymous one-line s3 import: exit $ONELINE_RC"
grep -q "HTTP 403 .*refused access" <<<"$ONELINE_ERR" || fail "anonymous one-line s3 import: $ONELINE_ERR"
oneline "$tmp/s3half.img" AWS_ACCESS_KEY_ID="$S3_KEY_ID"
[ "$ONELINE_RC" -eq 1 ] || fail "a key id without its secret: exit $ONELINE_RC"
assert_eq "vimport import: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not: set both to sign the requests, or neither for anonymous access" \
  "$ONELINE_ERR" "a key id without its secret"
oneline "$tmp/s3tok.img" AWS_ACCESS_KEY_ID="$S3_KEY_ID" AWS_SECRET_ACCESS_KEY="$S3_SECRET" AWS_SESSION_TOKEN=t
[ "$ONELINE_RC" -eq 1 ] || fail "a session token: exit $ONELINE_RC"
grep -q "AWS_SESSION_TOKEN is set: temporary credentials are not supported" <<<"$ONELINE_ERR" ||
  fail "a session token: $ONELINE_ERR"
oneline "$tmp/s3path.img" AWS_ENDPOINT_URL="$S3_ENDPOINT/imgs"
grep -q "AWS_ENDPOINT_URL: give the S3 endpoint as http(s)://HOST\[:PORT\], without a path" <<<"$ONELINE_ERR" ||
  fail "an endpoint with a path: $ONELINE_ERR"
for f in s3anon s3half s3tok s3path; do
  [ ! -e "$tmp/$f.img" ] || fail "$f.img was left behind by a refused import"
done

echo "$(date +%T) 6. the secret never printed" >&2
# ---- 6. the secret never printed ---------------------------------------------------------
grep -rlF "$S3_SECRET" "$outputs" "$tmp"/held.msg && fail "the secret key is in an output above"
grep -rlF "$S3_SECRET" "$tmp"/s3proxy.*/requests.log && fail "the secret key is in a request log"
# under a sanitizer build (VIMPORT=build/asan-bin/vimport) the failing imports must be clean too
grep -rlE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$outputs" && fail "a sanitizer report above"
pass "$n_out imports from a signature-checking S3 server: 5 formats streamed and checked against the object's digest, wrong secret refused by the server, a signed resume, a replaced object refused, the one-line s3:// import"
