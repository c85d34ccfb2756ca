#!/usr/bin/env bash
# vimport import from NBD exports (spec.source.nbd.uri): qemu-nbd over TCP on 127.0.0.1
# serving a qcow2 image, and nbdkit over a unix socket serving a raw file. The target
# equals the guest content (qemu-img's raw conversion), holes are never read, and the
# block hash equals `vimport sum` of that content.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_cmd qemu-nbd nbdkit qemu-img
tmp=$(e2e_tmpdir)

"$VIMPORT_TOP/hack/make-test-image.sh" "$tmp/disk.raw" 64 /usr/share/common-licenses
qemu-img convert -f raw -O qcow2 "$tmp/disk.raw" "$tmp/disk.qcow2"
want=sha256:$("$VIMPORT" sum "$tmp/disk.raw" | cut -d' ' -f1)

nbd_spec() {
  cat >"$tmp/spec.yaml" <<YAML
apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata: {name: nbd}
spec:
  source:
    nbd: {uri: "$1"}
vimport:
  terminationMessagePath: $tmp/term
  target: {path: $tmp/target.img}
YAML
}

check_import() {
  local what=$1
  rm -f "$tmp/target.img" "$tmp/term"
  "$VIMPORT" import --spec "$tmp/spec.yaml" 2>"$tmp/stderr" || fail "$what: exit $?: $(cat "$tmp/term" 2>/dev/null)"
  grep -q '"message":"Import Complete"' "$tmp/term" || fail "$what: $(cat "$tmp/term")"
  cmp "$tmp/target.img" "$tmp/disk.raw" || fail "$what: the target differs from the guest content"
  grep -q "\"blockHash\":\"$want\"" "$tmp/term" || fail "$what: block hash differs from vimport sum"
  # most of the disk is holes: they must not be read
  read_bytes=$(sed -n 's/.*export of [0-9]* bytes: \([0-9]*\) read.*/\1/p' "$tmp/stderr")
  [ -n "$read_bytes" ] && [ "$read_bytes" -lt $((32 << 20)) ] ||
    fail "$what: read ${read_bytes:-?} bytes of a 64 MiB mostly empty disk"
  echo "$what: imported, $read_bytes bytes read"
}

# qemu-nbd on TCP, qcow2 underneath
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
qemu-nbd --read-only --persistent --bind 127.0.0.1 --port "$port" -f qcow2 "$tmp/disk.qcow2" &
e2e_on_exit "kill $!"
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
nbd_spec "nbd://127.0.0.1:$port"
check_import "qemu-nbd nbd://"

# nbdkit on a unix socket, a raw file underneath
nbdkit --foreground --exit-with-parent --unix "$tmp/nbdkit.sock" file "$tmp/disk.raw" &
e2e_on_exit "kill $!"
for _ in $(seq 50); do [ -S "$tmp/nbdkit.sock" ] && break; sleep 0.1; done
nbd_spec "nbd+unix:///?socket=$tmp/nbdkit.sock"
check_import "nbdkit nbd+unix://"

# an export that is not there: a clear error, exit 1
nbd_spec "nbd://127.0.0.1:1"
set +e
"$VIMPORT" import --spec "$tmp/spec.yaml" 2>/dev/null
rc=$?
set -e
assert_eq 1 "$rc" "exit code for an unreachable NBD server"
pass "NBD imports from qemu-nbd and nbdkit"
