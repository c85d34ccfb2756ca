#!/usr/bin/env bash
# A verify Job in podman, as deploy/verify-job.yaml runs it: the FROM scratch image, uid
# 107, read-only root, no capabilities, the volume a loop device at /dev/cdi-block-volume,
# the spec and the block manifest mounted read-only. The untouched volume verifies; then
# the test changes one byte through the loop device and the Job fails, exit 1, with a
# termination message that names the corrupted byte range.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

read -ra PODMAN_RUN <<<"${VIMPORT_PODMAN_RUN:-podman --runtime runc --cgroup-manager=cgroupfs run --rm --ulimit nofile=1024:1024 --ulimit nproc=1024:1024}"
POD=(--user 107 --read-only --cap-drop ALL --security-opt no-new-privileges --memory 600m)

[ "$(id -u)" -eq 0 ] || skip "podman and loop devices run here as root only"
require_cmd podman python3 losetup blockdev
[ -w /dev/loop-control ] || skip "no /dev/loop-control"
tmp=$(e2e_tmpdir)
chmod 755 "$tmp"

(cd "$VIMPORT_TOP" && make --no-print-directory static) >"$tmp/make-static.log" 2>&1 ||
  fail "make static failed: $(tail -n 15 "$tmp/make-static.log")"
image=localhost/vimport-verify-e2e:$$
"$VIMPORT_TOP/hack/build-static-image.sh" "$VIMPORT_TOP/build" "$image" >"$tmp/image.log" 2>&1 ||
  fail "building the image failed: $(cat "$tmp/image.log")"
e2e_on_exit "podman rmi -f '$image'"
probe=$("${PODMAN_RUN[@]}" "${POD[@]}" "$image" version 2>&1) || skip "podman cannot run containers here: $probe"
static=$VIMPORT_TOP/build/vimport-static

# The volume: a real GPT+ext4 disk on a loop device, and its manifest (made at import time).
"$VIMPORT_TOP/hack/make-test-image.sh" "$tmp/disk.img" 32 /usr/share/common-licenses
loop=$(losetup -f --show "$tmp/disk.img") || skip "no free loop device"
e2e_on_exit "losetup -d '$loop'"
chown 107 "$loop" # what device_ownership_from_security_context does for the pod
"$static" sum --manifest "$tmp/manifest" "$loop" >"$tmp/sum"
hex=$(cut -d' ' -f1 "$tmp/sum")
chmod 644 "$tmp/manifest"
cat >"$tmp/spec.yaml" <<YAML
apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata: {name: verify-job}
spec:
  source: {blank: {}}
  storage: {volumeMode: Block}
vimport:
  expectedBlockHash: "sha256:$hex"
YAML
chmod 644 "$tmp/spec.yaml"

verify_job() {
  rm -f "$tmp/termination-log" && : >"$tmp/termination-log" && chmod 666 "$tmp/termination-log"
  rc=0
  "${PODMAN_RUN[@]}" "${POD[@]}" --network none --device "$loop:/dev/cdi-block-volume" \
    -v "$tmp/spec.yaml:/etc/vimport/spec.yaml:ro" -v "$tmp/manifest:/etc/vimport/manifest:ro" \
    -v "$tmp/termination-log:/dev/termination-log" "$image" \
    verify --spec /etc/vimport/spec.yaml --manifest /etc/vimport/manifest >"$tmp/stdout" 2>"$tmp/stderr" || rc=$?
  msg=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["message"])' "$tmp/termination-log")
}

verify_job
[ "$rc" -eq 0 ] || fail "verify of the untouched volume: exit $rc: $msg; $(tail -n 3 "$tmp/stderr")"
assert_eq "Verification Complete" "$msg" "verify of the untouched volume"

# one byte changed through the loop device, inside 64 KiB block 320
off=$((20 * 1048576 + 4321))
old=$(dd if="$loop" bs=1 skip=$off count=1 status=none | od -An -tu1 | tr -d ' ')
printf "\\$(printf '%03o' $(((old + 1) % 256)))" | dd of="$loop" bs=1 seek=$off count=1 conv=notrunc status=none
blockdev --flushbufs "$loop"
verify_job
assert_eq 1 "$rc" "verify Job exit code for the corrupted volume"
case $msg in *"bytes 20971520-21037055"*) ;; *) fail "the message does not name the corrupted range: $msg" ;; esac
echo "corrupted volume: $msg"
pass "verify Job in podman names the corrupted range"
