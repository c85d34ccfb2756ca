#!/usr/bin/env bash
# The FROM scratch image (Containerfile.scratch + build/vimport-static) run by podman as
# CDI runs its importer pod: uid 107, read-only root filesystem, no capabilities, 600M
# memory, the source on nginx over the host network, the termination message file
# mounted at /dev/termination-log. Then as a person runs it on a workstation (README,
# "Running with podman").
#   1. spec from deploy/spec-configmap.yaml mounted at /etc/vimport/spec.yaml, source
#      named through /etc/hosts (--add-host: the static binary resolves with c-ares),
#      target a directory at /data; cmp and block hash checked
#   1b. cdi-image-size-detection of that volume, by that name, as CDI's clone runs it;
#       a registry node pull: sh -c "cp ..." as CDI's init container runs it, the copy
#       run as /shared/server in a FROM scratch containerDisk (and -h), the importer
#       reading it through the ready and done files
#   1c. the image's qemu-nbd: cdi-image-size-detection of a vhdx; a vhdx and a
#       monolithicSparse vmdk imported from a file (the vhdx also over http with a
#       scratch directory), each byte-identical to qemu-img convert -O raw
#   2. `vimport verify` of that volume in the container, then of a corrupted copy
#   3. CDI's own invocation: only "-v=1" and the IMPORTER_* environment, HTTPS with a
#      test CA at /certs, target a loop device at /dev/cdi-block-volume
#   4. CDI's checksum-mismatch contract: exit 0, the reason in the message
#   5. the README's workstation commands: `sum` and `import --spec` of a local file
# build/vimport-static is built with `make static` (about 3 minutes the first time, while
# hack/build-static-deps.sh builds curl and libnbd; seconds once build/static-deps is
# cached). Skips, with the reason, when podman cannot run containers here.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# Every podman run goes through this: this machine needs runc, cgroupfs and explicit
# ulimits (podman's defaults exceed the sandbox's hard limits). Override as one string.
read -ra PODMAN_RUN <<<"${VIMPORT_PODMAN_RUN:-podman --runtime runc --cgroup-manager=cgroupfs run --rm --ulimit nofile=1024:1024 --ulimit nproc=1024:1024}"
# What CDI's importer pod gets (restricted securityContext, CDI's 600M limit).
POD=(--user 107 --read-only --cap-drop ALL --security-opt no-new-privileges --memory 600m)

[ "$(id -u)" -eq 0 ] || skip "podman runs here as root only (loop devices and rootful podman)"
require_cmd podman python3 losetup cmp xz zstd qemu-img
tmp=$(e2e_tmpdir)
chmod 755 "$tmp" # uid 107 in the container reaches the bind mounts below

# The static binary and the image. VIMPORT_E2E_IMAGE names an image built elsewhere to
# test instead (tests/e2e/test_dockerfile.sh: the Dockerfile's two-stage build); its
# /vimport, copied out, is then the binary the image must hold once and the host's.
if [ -n "${VIMPORT_E2E_IMAGE:-}" ]; then
  image=$VIMPORT_E2E_IMAGE
  image_bin=$tmp/image-vimport
  ctr=$(podman create "$image" version) || fail "podman create $image failed"
  podman cp "$ctr:/vimport" "$image_bin" || fail "cannot copy /vimport out of $image"
  podman rm -f "$ctr" >/dev/null
  static_bin=$image_bin
else
  (cd "$VIMPORT_TOP" && make --no-print-directory static) >"$tmp/make-static.log" 2>&1 ||
    fail "make static failed: $(grep -v 'warning: Using\|in function' "$tmp/make-static.log" | tail -n 15)"
  image=localhost/vimport-e2e:$$
  "$VIMPORT_TOP/hack/build-static-image.sh" "$VIMPORT_TOP/build" "$image" >"$tmp/image.log" 2>&1 ||
    fail "building the image failed: $(cat "$tmp/image.log")"
  e2e_on_exit "podman rmi -f '$image'"
  image_bin=$VIMPORT_TOP/build/image-context/vimport-static
  static_bin=$VIMPORT_TOP/build/vimport-static
fi
probe=$("${PODMAN_RUN[@]}" "${POD[@]}" "$image" version 2>&1) ||
  skip "podman cannot run containers here: $probe"
assert_eq "vimport $(sed -n 's/^#define VIMPORT_VERSION "\(.*\)"/\1/p' "$VIMPORT_TOP/cmd/vimport/commands.h")" \
  "$probe" "vimport version in the image"
# one copy of each binary: CDI's program paths and sh/cp are symbolic links to them
ctr=$(podman create "$image" version) || fail "podman create $image failed"
podman export "$ctr" | tar -tvf - >"$tmp/image-files" || fail "podman export of $image failed"
podman rm -f "$ctr" >/dev/null
for link in "usr/bin/cdi-image-size-detection -> /vimport" "usr/bin/cdi-containerimage-server -> /vimport" \
  "usr/bin/cdi-source-update-poller -> /vimport" "bin/sh -> busybox" "bin/cp -> busybox"; do
  grep -q "^l.* $link\$" "$tmp/image-files" || fail "the image has no link $link: $(grep -E 'usr/bin/cdi|bin/(sh|cp)' "$tmp/image-files")"
done
[ "$(grep -c "^-.* $(stat -c %s "$image_bin") " "$tmp/image-files")" -eq 1 ] ||
  fail "the image holds the vimport binary more than once: $(grep -E '^-' "$tmp/image-files" | sort -k3 -n | tail -5)"

# The source images, on nginx.
srv=$tmp/srv
mkdir -p "$srv"
"$VIMPORT_TOP/hack/make-test-image.sh" "$srv/disk.raw" 40 /usr/share/doc/bash
xz -k -T1 -c "$srv/disk.raw" >"$srv/disk.raw.xz"
zstd -q -c "$srv/disk.raw" >"$srv/disk.raw.zst"
chmod -R a+rX "$srv"
size=$(stat -c %s "$srv/disk.raw")
blockhash=sha256:$("$static_bin" sum "$srv/disk.raw" | cut -d' ' -f1)
sha() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }
nginx_start "$srv"
chmod -R a+rX "$TEST_CA_DIR"

# A fresh termination-log file uid 107 may write, like the kubelet's.
new_termlog() {
  rm -f "$tmp/termination-log"
  : >"$tmp/termination-log"
  chmod 666 "$tmp/termination-log"
}
msg() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval("d"+sys.argv[2]))' "$tmp/termination-log" "$1"; }
# run_pod ARGS...: podman run with the pod's flags; exit code in $rc, stderr in $tmp/stderr
run_pod() {
  rc=0
  "${PODMAN_RUN[@]}" "${POD[@]}" --network host \
    -v "$tmp/termination-log:/dev/termination-log" "$@" >"$tmp/stdout" 2>"$tmp/stderr" || rc=$?
}
expect_message() {
  local what=$1 want=$2
  [ "$rc" -eq 0 ] || fail "$what: exit $rc: $(cat "$tmp/termination-log"); stderr: $(tail -n 5 "$tmp/stderr")"
  assert_eq "$want" "$(msg '["message"]')" "$what: message"
}

# 1. The deploy/ ConfigMap's spec, pointed at this nginx, into a /data directory.
python3 - "$VIMPORT_TOP/deploy/spec-configmap.yaml" "$tmp/spec.yaml" \
  "http://images.vimport.test:$NGINX_PORT/disk.raw.xz" "$(sha "$srv/disk.raw.xz")" "$blockhash" "$size" <<'EOF'
import sys, yaml
cm, out, url, checksum, blockhash, size = sys.argv[1:]
spec = yaml.safe_load(yaml.safe_load(open(cm))["data"]["spec.yaml"])
http = spec["spec"]["source"]["http"]
http["url"], http["checksum"] = url, checksum
spec["spec"]["storage"]["resources"]["requests"]["storage"] = size
spec["vimport"]["expectedBlockHash"] = blockhash
yaml.safe_dump(spec, open(out, "w"))
EOF
chmod 644 "$tmp/spec.yaml"
mkdir "$tmp/data"
chown 107:107 "$tmp/data" # what fsGroup does for the importer pod
spec_mounts=(-v "$tmp/spec.yaml:/etc/vimport/spec.yaml:ro" -v "$TEST_CA_DIR:/certs:ro")
new_termlog
run_pod --add-host "images.vimport.test:127.0.0.1" "${spec_mounts[@]}" -v "$tmp/data:/data" \
  "$image" import --spec /etc/vimport/spec.yaml
expect_message "spec import" "Import Complete"
assert_eq "$blockhash" "$(msg '["vimport"]["blockHash"]')" "spec import: block hash"
assert_eq "$(sha "$srv/disk.raw.xz")" "$(msg '["vimport"]["sourceDigest"]')" "spec import: source digest"
cmp "$tmp/data/disk.img" "$srv/disk.raw" || fail "spec import: /data/disk.img differs from the source image"
grep -q "images.vimport.test" "$tmp/stderr" ||
  fail "spec import: the log does not name the source host: $(cat "$tmp/stderr")"

# 1b. CDI's host-assisted clone runs /usr/bin/cdi-image-size-detection from the importer
# image (pvc-clone-controller.go makeSizeDetectionContainerSpec) and reads the size.
new_termlog
run_pod -v "$tmp/data:/data:ro" --entrypoint /usr/bin/cdi-image-size-detection "$image" \
  -image-path /data/disk.img
[ "$rc" -eq 0 ] || fail "size detection: exit $rc: $(cat "$tmp/stderr")"
assert_eq "$size" "$(cat "$tmp/termination-log")" "size detection: termination message"
# ... and a registry node pull, as CDI's importer pod runs it (import-controller.go): the
# init container runs sh and cp from this image into the shared volume at /shared, the
# containerDisk (FROM scratch, ADD disk.qcow2 /disk/: no libc, no shell) runs
# /shared/server, and the importer, from this image, waits for /shared/ready, reads
# http://localhost:<port>/disk.img (the file the ready file names) and touches
# /shared/done, which stops the server. `/shared/server -h` (DataImportCron) exits 0.
vol=/shared
mkdir "$tmp/initvol"
chown 107 "$tmp/initvol"
run_pod -v "$tmp/initvol:$vol" --entrypoint /bin/sh "$image" \
  -c "cp /usr/bin/cdi-containerimage-server $vol/server"
[ "$rc" -eq 0 ] || fail "sh -c cp in the image: exit $rc: $(cat "$tmp/stderr")"
cmp "$tmp/initvol/server" "$image_bin" ||
  fail "sh -c cp in the image: the copied server is not the binary"
cd_ctx=$tmp/containerdisk
mkdir -p "$cd_ctx"
qemu-img convert -O qcow2 "$srv/disk.raw" "$cd_ctx/disk.qcow2"
chmod 644 "$cd_ctx/disk.qcow2"
printf 'FROM scratch\nADD disk.qcow2 /disk/\n' >"$cd_ctx/Containerfile"
cd_image=localhost/vimport-e2e-containerdisk:$$
podman build -q -t "$cd_image" "$cd_ctx" >"$tmp/cd-build.log" 2>&1 ||
  fail "podman build of the containerDisk failed: $(cat "$tmp/cd-build.log")"
e2e_on_exit "podman rmi -f '$cd_image'"
run_pod -v "$tmp/initvol:$vol" "$cd_image" /shared/server -h
[ "$rc" -eq 0 ] || fail "/shared/server -h in the containerDisk: exit $rc: $(cat "$tmp/stderr")"
np_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${PODMAN_RUN[@]}" "${POD[@]}" --network host -v "$tmp/initvol:$vol" "$cd_image" /shared/server \
  -p "$np_port" -image-dir /disk -ready-file /shared/ready -done-file /shared/done \
  >"$tmp/np-server.out" 2>"$tmp/np-server.err" &
np_server=$!
mkdir "$tmp/npdata"
chown 107:107 "$tmp/npdata"
new_termlog
run_pod -v "$tmp/initvol:$vol" -v "$tmp/npdata:/data" -e IMPORTER_SOURCE=http \
  -e IMPORTER_ENDPOINT="http://localhost:$np_port/disk.img" -e IMPORTER_READY_FILE=/shared/ready \
  -e IMPORTER_DONE_FILE=/shared/done -e IMPORTER_PULL_METHOD=node -e IMPORTER_CONTENTTYPE=kubevirt \
  -e IMPORTER_IMAGE_SIZE="$size" "$image" -v=1
expect_message "node pull" "Import Complete"
cmp "$tmp/npdata/disk.img" "$srv/disk.raw" || fail "node pull: /data/disk.img differs from the source image"
np_rc=0
timeout 20 tail --pid="$np_server" -f /dev/null || fail "node pull: the server did not stop after the done file"
wait "$np_server" || np_rc=$?
assert_eq 0 "$np_rc" "node pull: the server's exit code ($(tail -n 3 "$tmp/np-server.err"))"
if [ -e "$tmp/initvol/done" ] || [ -e "$tmp/initvol/ready" ]; then
  fail "node pull: the server left its ready or done file"
fi

# 1c. vhdx and sparse vmdk go through qemu-nbd, which the image carries (Debian's, with its
# libraries; libnbd finds it on the image's PATH): the size detection of a vhdx, as
# qemu-img info gives it, and imports from a file mounted in the container and, for the
# vhdx, over http through a scratch directory, each the bytes qemu-img convert makes.
qn=$tmp/qemu-nbd
mkdir -p "$qn/images" "$qn/scratch"
qemu-img convert -O vhdx "$srv/disk.raw" "$qn/images/disk.vhdx"
qemu-img convert -O vmdk -o subformat=monolithicSparse "$srv/disk.raw" "$qn/images/disk.vmdk"
cp "$qn/images/disk.vhdx" "$srv/disk.vhdx"
chmod -R a+rX "$qn/images" "$srv"
chown 107 "$qn/scratch"
vhdx_size=$(qemu-img info --output=json "$qn/images/disk.vhdx" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
new_termlog
run_pod -v "$qn/images:/data:ro" --entrypoint /usr/bin/cdi-image-size-detection "$image" \
  -image-path /data/disk.vhdx
[ "$rc" -eq 0 ] || fail "size detection of a vhdx in the image: exit $rc: $(cat "$tmp/stderr")"
assert_eq "$vhdx_size" "$(cat "$tmp/termination-log")" "size detection of a vhdx: termination message"
# qemu_import NAME SOURCE-YAML [EXTRA-VIMPORT-YAML]: import that source into a fresh /data
# directory and compare the disk with `qemu-img convert -O raw` of $qn/images/NAME.
qemu_import() {
  local name=$1 source=$2 extra=${3:-}
  local out
  out=$(mktemp -d "$qn/out.XXXXXX")
  chown 107:107 "$out"
  printf 'apiVersion: cdi.kubevirt.io/v1beta1\nkind: DataVolume\nmetadata: {name: qemu-nbd}\n%s\n%s\n%s\n' \
    "spec:" "  source: $source" "vimport: {target: {path: /data/disk.img}$extra}" >"$out.yaml"
  chmod 644 "$out.yaml"
  qemu-img convert -O raw "$qn/images/$name" "$out.want"
  new_termlog
  run_pod -v "$qn/images:/images:ro" -v "$qn/scratch:/scratch" -v "$out:/data" \
    -v "$out.yaml:/etc/vimport/spec.yaml:ro" "$image" import --spec /etc/vimport/spec.yaml
  expect_message "$name import ($source)" "Import Complete"
  cmp "$out/disk.img" "$out.want" ||
    fail "$name import ($source): /data/disk.img differs from qemu-img convert -O raw"
  [ -z "$(ls -A "$qn/scratch")" ] || fail "$name import: left files in the scratch directory: $(ls -A "$qn/scratch")"
}
qemu_import disk.vhdx "{file: {path: /images/disk.vhdx}}"
qemu_import disk.vmdk "{file: {path: /images/disk.vmdk}}"
grep -q "qemu-nbd" "$tmp/stderr" || fail "vmdk import: the log does not name qemu-nbd: $(cat "$tmp/stderr")"
qemu_import disk.vhdx "{http: {url: \"http://127.0.0.1:$NGINX_PORT/disk.vhdx\"}}" ", scratchPath: /scratch"

# 2. vimport verify of the volume, read-only, as deploy/verify-job.yaml runs it.
if "${PODMAN_RUN[@]}" "$image" verify --help >/dev/null 2>&1; then
  new_termlog
  run_pod "${spec_mounts[@]}" -v "$tmp/data:/data:ro" "$image" verify --spec /etc/vimport/spec.yaml
  expect_message "verify" "Verification Complete"
  assert_eq "$blockhash" "$(msg '["vimport"]["blockHash"]')" "verify: block hash"
  # one changed byte in the middle of the ext4 partition
  printf 'X' | dd of="$tmp/data/disk.img" bs=1 seek=$((size / 2)) conv=notrunc status=none
  new_termlog
  run_pod "${spec_mounts[@]}" -v "$tmp/data:/data:ro" "$image" verify --spec /etc/vimport/spec.yaml
  [ "$rc" -eq 1 ] || fail "verify of a corrupted volume: exit $rc, want 1: $(cat "$tmp/termination-log")"
  grep -q "Verification failed" "$tmp/termination-log" ||
    fail "verify of a corrupted volume: message: $(cat "$tmp/termination-log")"
else
  echo "NOTE: this image has no 'vimport verify'; verify steps not run" >&2
fi

# 3. CDI's invocation: args "-v=1", IMPORTER_* env, HTTPS with the CA at /certs, Block.
[ -w /dev/loop-control ] || skip "no /dev/loop-control for the Block-volume case (steps 1-2 passed)"
truncate -s "$size" "$tmp/block.raw"
loop=$(losetup -f --show "$tmp/block.raw") || skip "no free loop device (steps 1-2 passed)"
e2e_on_exit "losetup -d '$loop'"
chown 107 "$loop" # what device_ownership_from_security_context does for the pod
# The environment CDI's controller gives its importer (makeImportEnv): empty strings for
# what a plain http import does not use. OWNER_UID is the owning PVC's metadata.uid.
cdi_env=(-e IMPORTER_SOURCE=http -e IMPORTER_CONTENTTYPE=kubevirt -e "IMPORTER_IMAGE_SIZE=$size"
  -e FILESYSTEM_OVERHEAD=0 -e INSECURE_TLS=false -e IMPORTER_DISK_ID= -e IMPORTER_UUID=
  -e IMPORTER_READY_FILE= -e IMPORTER_DONE_FILE= -e IMPORTER_BACKING_FILE= -e IMPORTER_THUMBPRINT=
  -e IMPORTER_CURRENT_CHECKPOINT= -e IMPORTER_PREVIOUS_CHECKPOINT= -e IMPORTER_FINAL_CHECKPOINT=
  -e PREALLOCATION=false -e IMPORTER_CERT_DIR=/certs)
new_termlog
run_pod --device "$loop:/dev/cdi-block-volume" -v "$TEST_CA_DIR:/certs:ro" "${cdi_env[@]}" \
  -e "IMPORTER_ENDPOINT=$NGINX_TLS_URL/disk.raw.zst" -e "IMPORTER_CHECKSUM=$(sha "$srv/disk.raw.zst")" \
  -e "VIMPORT_EXPECTED_BLOCK_HASH=$blockhash" "$image" -v=1
expect_message "CDI env, block" "Import Complete"
assert_eq "$blockhash" "$(msg '["vimport"]["blockHash"]')" "CDI env, block: block hash"
cmp -n "$size" "$loop" "$srv/disk.raw" || fail "CDI env, block: the loop device differs from the source"

# 4. A wrong checksum: exit 0 (the controller reads the message), CDI's wording.
new_termlog
mkdir "$tmp/data2"
chown 107:107 "$tmp/data2"
run_pod -v "$tmp/data2:/data" -e IMPORTER_SOURCE=http \
  -e "IMPORTER_ENDPOINT=http://127.0.0.1:$NGINX_PORT/disk.raw.xz" \
  -e "IMPORTER_CHECKSUM=sha256:$(printf '0%.0s' $(seq 64))" "$image" -v=1
[ "$rc" -eq 0 ] || fail "checksum mismatch: exit $rc, CDI's contract is 0: $(cat "$tmp/termination-log")"
msg '["message"]' | grep -q "checksum mismatch" ||
  fail "checksum mismatch: message: $(cat "$tmp/termination-log")"

# 5. The README's workstation commands (README.md, "Running with podman").
ws=$tmp/ws
mkdir -p "$ws/out"
cp "$srv/disk.raw" "$ws/disk.raw"
chmod -R a+rwX "$ws"
cat >"$ws/dv.yaml" <<EOF
apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata: {name: workstation}
spec:
  source:
    file: {path: /images/disk.raw}
vimport:
  expectedBlockHash: "$blockhash"
  target: {path: /data/disk.img}
  terminationMessagePath: /data/result.json
EOF
out=$(cd "$ws" && "${PODMAN_RUN[@]}" -v "$PWD:/images:ro" "$image" sum /images/disk.raw) ||
  fail "workstation sum failed: $out"
assert_eq "${blockhash#sha256:}  /images/disk.raw" "$out" "workstation sum"
(cd "$ws" && "${PODMAN_RUN[@]}" -v "$PWD:/images:ro" -v "$PWD/out:/data" \
  -v "$PWD/dv.yaml:/etc/vimport/spec.yaml:ro" "$image" import --spec /etc/vimport/spec.yaml) \
  >"$tmp/ws.log" 2>&1 || fail "workstation import failed: $(tail -n 5 "$tmp/ws.log")"
grep -q '"Import Complete"' "$ws/out/result.json" || fail "workstation import: $(cat "$ws/out/result.json")"
cmp "$ws/out/disk.img" "$srv/disk.raw" || fail "workstation import: out/disk.img differs"
# 6. OWNER_UID exactly as CDI sets it: the owner's metadata.uid, a UUID (it labels the
# progress metric). Last, so a failure here leaves every other step checked.
new_termlog
run_pod --device "$loop:/dev/cdi-block-volume" -v "$TEST_CA_DIR:/certs:ro" "${cdi_env[@]}" \
  -e "IMPORTER_ENDPOINT=$NGINX_TLS_URL/disk.raw.zst" -e OWNER_UID=6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f \
  "$image" -v=1
[ "$rc" -eq 0 ] || fail "CDI env with OWNER_UID=<PVC uid>: exit $rc: $(msg '["message"]') -- CDI sets OWNER_UID to the owner's metadata.uid (a UUID, the progress metric's ownerUID label), not a numeric user id"
pass "container: spec/hosts/dir, qemu-nbd vhdx/vmdk, verify, CDI env/TLS/block, checksum contract, workstation"
