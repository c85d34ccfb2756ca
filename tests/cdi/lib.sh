# shellcheck shell=bash disable=SC2034 # VOL_* and RC/MSG are for cases.sh
# tests/cdi/lib.sh: run the vimport image the way CDI's importer pod runs it.
# Sourced by tests/cdi/case.sh (one case per process, bounded by run.sh).
#
# From run.sh (exported): CDI_IMAGE (the image tag), CDI_SRV (the dir nginx serves),
# NGINX_URL, NGINX_TLS_URL, TEST_CA_DIR (nginx's CA, as a certConfigMap dir), CDI_TOP.
# Per case: CASE_TMP (removed at exit), CASE_NAME.
#
#   fail MSG                      "FAIL: MSG", exit 1
#   expect_eq WHAT WANT GOT       fail "WHAT: expected 'WANT', got 'GOT'" unless equal
#   on_exit CMD                   run CMD at exit, last registered first
#   cdipy ARGS...                 tests/cdi/cdi.py (CDI's arithmetic)
#   fs_volume REQUEST [OVERHEAD]  a Filesystem PVC: an ext4 of required-space(REQUEST)
#                                 bytes (mkfs.ext4 -F -m0, as kubelet formats it),
#                                 loop-mounted; sets VOL_DIR, VOL_SIZE, VOL_AVAIL
#   fs_volume_of_size BYTES       the same, of BYTES (a provisioner that rounds up)
#   scratch_dir                   an empty dir for /scratch; sets SCRATCH
#   block_volume SIZE             a Block PVC: a loop device of SIZE bytes; sets VOL_DEV
#   run_importer [PODMAN_ARGS...] -- [ENV=VAL...]
#                                 podman run of the image with the pod's securityContext,
#                                 CDI's makeImportEnv (ENV=VAL override/add), the volume
#                                 set up above, the args ["-v=1"]; sets RC, MSG (the
#                                 termination message), stderr in $CASE_TMP/stderr
#   run_image [PODMAN_ARGS...] -- [IMAGE_ARGS...]
#                                 podman run of the image with the pod's flags and the
#                                 termination log mounted (--entrypoint picks another
#                                 program); sets RC, MSG
#   msg_json EXPR                 field of the termination message (Python subscript)
#   qemu_size IMG                 virtual size per `qemu-img info`
#   allocated FILE                bytes allocated to FILE (st_blocks * 512)

CDI_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CDI_TOP=${CDI_TOP:-$(cd "$CDI_DIR/../.." && pwd)}

# Every podman run goes through this one variable (tests/e2e/test_container.sh: this
# machine needs runc, cgroupfs and explicit ulimits). Override as one string.
read -ra PODMAN_RUN <<<"${VIMPORT_PODMAN_RUN:-podman --runtime runc --cgroup-manager=cgroupfs run --rm --ulimit nofile=1024:1024 --ulimit nproc=1024:1024}"
# The importer pod's securityContext: pkg/controller/import-controller.go
# makeImporterPodSpec -> cc.SetRestrictedSecurityContext (non-root, no privilege
# escalation, capabilities dropped); uid 107 as CDI's image; CDI's 600M memory limit.
POD_FLAGS=(--user 107 --read-only --cap-drop ALL --security-opt no-new-privileges --memory 600m)

_exit_cmds=()
on_exit() { _exit_cmds+=("$*"); }
_cleanup() {
  local i
  for ((i = ${#_exit_cmds[@]} - 1; i >= 0; i--)); do
    eval "${_exit_cmds[$i]}" >/dev/null 2>&1 || true
  done
  [ -n "${CASE_TMP:-}" ] && [ -d "$CASE_TMP" ] && rm -rf "$CASE_TMP"
}
trap _cleanup EXIT
trap 'exit 143' TERM INT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
expect_eq() {
  [ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"
}
cdipy() { python3 "$CDI_DIR/cdi.py" "$@"; }

CASE_TMP=$(mktemp -d "${CDI_ROOT:-/var/tmp}/case-$CASE_NAME.XXXXXX") || fail "mktemp failed"
chmod 755 "$CASE_TMP" # uid 107 in the container reaches the bind mounts below
_podman_n=0 _vol_n=0
VOL_DIR='' VOL_DEV=''

# scratch_dir: an empty /scratch for the pod (CDI's scratch PVC, owned by fsGroup 107);
# sets SCRATCH
scratch_dir() {
  SCRATCH=$CASE_TMP/scratch
  mkdir -p "$SCRATCH"
  chown 107:107 "$SCRATCH"
}

# fs_volume REQUEST [OVERHEAD]: the controller asks for GetRequiredSpace(OVERHEAD,
# REQUEST) (pkg/controller/common/util.go InflateSizeWithOverhead); the provisioner
# makes a volume of that size and kubelet formats it (mkfs.ext4 -F -m0: no root
# reserve); fsGroup 107 makes its root writable by the pod.
fs_volume() {
  local request=$1 overhead=${2:-0.055}
  fs_volume_of_size "$(cdipy required-space "$overhead" "$request")"
}

# fs_volume_of_size BYTES: an ext4 volume of exactly BYTES (a provisioner that rounds up)
fs_volume_of_size() {
  local img mnt
  VOL_SIZE=$1
  _vol_n=$((_vol_n + 1))
  img=$CASE_TMP/fs$_vol_n.img
  mnt=$CASE_TMP/data$_vol_n
  truncate -s "$VOL_SIZE" "$img"
  mkfs.ext4 -q -F -m0 "$img" >/dev/null 2>&1 || fail "mkfs.ext4 of $VOL_SIZE bytes failed"
  mkdir -p "$mnt"
  mount -o loop "$img" "$mnt" || fail "cannot loop-mount the ext4 volume (root and loop devices needed)"
  on_exit "umount -l '$mnt'"
  chown 107:107 "$mnt"
  chmod 2775 "$mnt"
  VOL_DIR=$mnt
  # pkg/importer/file.go GetAvailableSpace on /data, as the importer will see it
  VOL_AVAIL=$(cdipy available "$mnt")
}

# block_volume SIZE: a Block PVC is not inflated (InflateSizeWithOverhead); the device
# is handed to uid 107 (device_ownership_from_security_context).
block_volume() {
  local size=$1
  truncate -s "$size" "$CASE_TMP/block.img"
  VOL_DEV=$(losetup -f --show "$CASE_TMP/block.img") || fail "no free loop device"
  on_exit "losetup -d '$VOL_DEV'"
  chown 107 "$VOL_DEV"
  VOL_SIZE=$size
}

new_termlog() {
  rm -f "$CASE_TMP/termination-log"
  : >"$CASE_TMP/termination-log"
  chmod 666 "$CASE_TMP/termination-log"
}

# run_image [PODMAN_ARGS...] -- [IMAGE_ARGS...]: podman's arguments, "--", then the
# arguments the image's entrypoint gets. Sets RC and MSG.
run_image() {
  local pod_args=() name
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do pod_args+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  _podman_n=$((_podman_n + 1))
  name=cdisuite-${CDI_RUN_ID:-$$}-$CASE_NAME-$$-$_podman_n
  on_exit "podman rm -f '$name'"
  new_termlog
  RC=0
  # In the background and waited for, so a TERM from run.sh's timeout runs the cleanup
  # (podman rm -f, umount) at once instead of after the container ends.
  timeout --kill-after=5 "${CDI_POD_TIMEOUT:-150}" "${PODMAN_RUN[@]}" --name "$name" "${POD_FLAGS[@]}" \
    --network "${POD_NETWORK:-host}" -v "$CASE_TMP/termination-log:/dev/termination-log" \
    "${pod_args[@]}" "$CDI_IMAGE" "$@" >"$CASE_TMP/stdout" 2>"$CASE_TMP/stderr" &
  wait $! || RC=$?
  MSG=$(cat "$CASE_TMP/termination-log")
}

# run_importer [PODMAN_ARGS...] -- [ENV=VAL...]: the container CDI's controller makes
# (pkg/controller/import-controller.go makeImporterContainerSpec): Args ["-v=1"], the
# env of makeImportEnv, /data (Filesystem) or /dev/cdi-block-volume (Block)
# (cc.AddImportVolumeMounts / cc.AddVolumeDevices), terminationMessagePath
# /dev/termination-log. Defaults are what a plain http kubevirt import gets; ENV=VAL
# pairs override them. IMPORTER_CERT_DIR / IMPORTER_PROXY_CERT_DIR are set only when
# asked, as makeImportEnv does only with a certConfigMap.
run_importer() {
  local pod_args=() env_args=() kv
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do pod_args+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  local -A env=(
    [IMPORTER_SOURCE]=http [IMPORTER_ENDPOINT]='' [IMPORTER_CONTENTTYPE]=kubevirt
    [IMPORTER_IMAGE_SIZE]='' [OWNER_UID]=6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f
    [FILESYSTEM_OVERHEAD]=0.055 [INSECURE_TLS]=false [IMPORTER_DISK_ID]='' [IMPORTER_UUID]=''
    [IMPORTER_PULL_METHOD]='' [IMPORTER_READY_FILE]='' [IMPORTER_DONE_FILE]=''
    [IMPORTER_BACKING_FILE]='' [IMPORTER_THUMBPRINT]='' [http_proxy]='' [https_proxy]=''
    [no_proxy]='' [IMPORTER_CURRENT_CHECKPOINT]='' [IMPORTER_PREVIOUS_CHECKPOINT]=''
    [IMPORTER_FINAL_CHECKPOINT]='' [PREALLOCATION]=false [CACHE_MODE]=''
    [IMPORTER_REGISTRY_IMAGE_ARCHITECTURE]='' [IMPORTER_CHECKSUM]=''
  )
  # Block PVCs get FILESYSTEM_OVERHEAD "0" (pkg/controller/util.go GetFilesystemOverhead)
  [ -n "$VOL_DEV" ] && env[FILESYSTEM_OVERHEAD]=0
  for kv in "$@"; do env[${kv%%=*}]=${kv#*=}; done
  for kv in "${!env[@]}"; do env_args+=(-e "$kv=${env[$kv]}"); done
  [ -n "$VOL_DIR" ] && pod_args+=(-v "$VOL_DIR:/data")
  [ -n "$VOL_DEV" ] && pod_args+=(--device "$VOL_DEV:/dev/cdi-block-volume")
  run_image "${pod_args[@]}" "${env_args[@]}" -- "-v=1"
}

msg_json() { cdipy json "$CASE_TMP/termination-log" "$1"; }
msg_is_json() { cdipy is-json "$CASE_TMP/termination-log"; }
qemu_size() {
  qemu-img info --output=json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])'
}
allocated() { echo $(($(stat -c %b "$1") * $(stat -c %B "$1"))); }
sha() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }
# what went wrong, for failure lines
why() { echo "exit $RC, message: ${MSG:0:600}; stderr: $(tail -n 3 "$CASE_TMP/stderr" | cut -c1-300)"; }

# CDI's success (cmd/cdi-importer/importer.go handleImport): exit 0, JSON with
# message "Import Complete".
expect_complete() {
  local what=$1 m
  [ "$RC" -eq 0 ] || fail "$what: expected exit 0 and \"Import Complete\", got $(why)"
  m=$(msg_json '["message"]') || fail "$what: expected a JSON termination message, got $(why)"
  expect_eq "$what: message" "Import Complete" "$m"
}

# CDI's plain failure (handleImport, errorCannotConnectDataSource, createBlankImage):
# exit 1, plain text (not JSON), first line the cause.
expect_plain_failure() {
  local what=$1 prefix=$2 contains=$3
  [ "$RC" -eq 1 ] || fail "$what: expected exit 1 (CDI's handleImport), got $(why)"
  ! msg_is_json || fail "$what: expected a plain-text message (CDI writes text for this failure), got JSON: ${MSG:0:600}"
  case $MSG in "$prefix"*) ;; *) fail "$what: expected a message starting \"$prefix\", got: ${MSG:0:600}" ;; esac
  case $MSG in *"$contains"*) ;; *) fail "$what: expected a message containing \"$contains\", got: ${MSG:0:600}" ;; esac
  [ "$(wc -c <"$CASE_TMP/termination-log")" -lt 4096 ] || fail "$what: termination message is 4096 bytes or more"
}

# file_mode FILE: octal permission bits
file_mode() { stat -c %a "$1"; }
