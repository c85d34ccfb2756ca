#!/usr/bin/env bash
# The gcs source when the transfer breaks: resumes pinned to the object's generation,
# tokens refreshed when an import outlives them, and a replaced object refused.
#
# The server is a STAND-IN (tests/e2e/gcs_standin.py): no GCS server can be installed
# here (fake-gcs-server is in neither Debian nor npm; firebase-tools' storage emulator
# needs Java 21, which Debian 12 lacks). It serves the JSON API as Google documents it
# (generation, ifGenerationMatch, Range, crc32c, md5Hash) and cuts downloads on request.
# Its token endpoint stands in for oauth2.googleapis.com (not reachable from a test): it
# verifies each JWT's RS256 signature with the service account's public key, and here
# issues tokens that live 4 s, refusing them afterwards.
#
#   1. a raw image whose download is cut halfway and paused 5 s: the import resumes
#      with "Range: bytes=<cut>-" and If-Range on the same generation, with a new token
#      (the first one expired meanwhile), and the target is the image
#   2. the same for a qcow2 image (its re-reads go through the same pinned URL)
#   3. the object replaced by another while the download is cut: the resume finds its
#      generation gone and the import fails saying so; nothing of the new object is spliced
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gcs_lib.sh"
require_cmd qemu-img sgdisk mkfs.ext4 cmp
tmp=$(e2e_tmpdir)
root=$tmp/store
mkdir -p "$root/vm"
"$VIMPORT_TOP/hack/make-test-image.sh" "$tmp/base.img" 24 2>/dev/null
cp "$tmp/base.img" "$root/vm/disk.raw"
qemu-img convert -f raw -O qcow2 "$tmp/base.img" "$root/vm/disk.qcow2"
"$VIMPORT_TOP/hack/make-test-image.sh" "$tmp/other.img" 24 /usr/share/doc/bash 2>/dev/null
cmp -s "$tmp/base.img" "$tmp/other.img" && fail "the two images are the same"
cp "$tmp/base.img" "$root/vm/replaced.raw"

gcs_start "$root" --token-lifetime 4
env=(IMPORTER_SOURCE=gcs IMPORTER_CERT_DIR="$GCS_CA_DIR"
     GOOGLE_APPLICATION_CREDENTIALS="$GCS_SECRET/credentials.json")
cut=$((5 << 20))

# media_requests OBJECT: the stand-in's alt=media requests for it, one JSON per line
media_requests() { grep '"query": "alt=media' "$GCS_LOG" | grep -F "/b/vm/o/$1\"" || true; }

# ---- 1 and 2. cut, paused past the token's life, resumed ----
for name in disk.raw disk.qcow2; do
  cut=$(($(stat -c %s "$root/vm/$name") / 2))
  gcs_control vm "$name" "{\"reset_at\": $cut, \"reset_times\": 1, \"pause\": 5}"
  env_import "${env[@]}" IMPORTER_ENDPOINT="$GCS_HOST/vm/$name"
  [ "$IMPORT_RC" -eq 0 ] || fail "$name cut at byte $cut: exit $IMPORT_RC: $IMPORT_MSG"
  qemu-img convert -O raw "$root/vm/$name" "$tmp/oracle.raw"
  cmp "$tmp/disk.img" "$tmp/oracle.raw" || fail "$name: the resumed import differs from qemu-img's raw"
  media_requests "$name" | /usr/bin/python3 -c '
import json, sys
cut, gen = int(sys.argv[1]), sys.argv[2]
reqs = [json.loads(l) for l in sys.stdin]
first = [r for r in reqs if r.get("cut_at") is not None]
assert len(first) == 1 and first[0]["cut_at"] == cut, "no cut download: %s" % reqs
resumed = [r for r in reqs if r["range"] == "bytes=%d-" % cut]
assert resumed, "no resume from byte %d: %s" % (cut, [r["range"] for r in reqs])
r = resumed[0]
assert r["status"] == 206 and r["if_range"], "the resume was not a guarded 206: %s" % r
for q in reqs:
    assert "generation=" + gen in q["query"], "a request not pinned to %s: %s" % (gen, q)
assert r["token"] != first[0]["token"], "the resume used the expired token"
' "$cut" "$(python3 -c 'import os,sys; print(os.stat(sys.argv[1]).st_mtime_ns // 1000)' "$root/vm/$name")" ||
    fail "$name: the stand-in did not see a pinned, guarded resume with a fresh token"
  [ "$(import_json '["vimport"]["verified"]' | grep -c object-checksum)" -eq 1 ] ||
    fail "$name: crc32c/md5Hash not checked after a resume"
  gcs_control vm "$name" ''
done
grep -q '"auth": "expired"' "$GCS_LOG" && fail "vimport sent an expired token"
tokens=$(grep -c '"verdict": "ok"' "$GCS_LOG")
[ "$tokens" -ge 4 ] || fail "only $tokens tokens for two imports that each outlived one"

# ---- 3. replaced while cut ----
cut=$((5 << 20))
gcs_control vm replaced.raw "{\"reset_at\": $cut, \"reset_times\": 1, \"replace_with\": \"$tmp/other.img\"}"
env_import "${env[@]}" IMPORTER_ENDPOINT="$GCS_HOST/vm/replaced.raw"
[ "$IMPORT_RC" -ne 0 ] || fail "an object replaced mid-transfer was imported"
expect_text_failure "replaced object" '^Unable to process data: .*HTTP 404 .*gone since the import started'
media_requests replaced.raw | grep -q '"replaced": true' || fail "the stand-in did not replace the object"
# a 206 before the cut is the raw decoder's look at the object's last 512 bytes (a fixed
# VHD footer); the resume from the cut is the one that must not get bytes
media_requests replaced.raw | grep "\"range\": \"bytes=$cut-" | grep '"status": 206' &&
  fail "bytes of the new generation were served to the resume"
[ ! -s "$tmp/disk.img" ] || ! cmp -s -n "$cut" "$tmp/disk.img" "$tmp/base.img" || true
for f in "$E2E_TMP"/import.stderr "$E2E_TMP"/termination-log "$GCS_LOG"; do
  ! grep -qF -- "$GCS_KEY_MARK" "$f" || fail "the private key is in $f"
done
pass "resumed on the pinned generation with refreshed tokens; a replaced object refused"
