#!/usr/bin/env bash
# `make demo`: one real import on loopback with every verification stage.
#   1. build a real disk image (GPT + ext4 filled from /usr/share/doc) and compress it
#   2. serve it with nginx on 127.0.0.1 (plain HTTP and HTTPS with a CA made here)
#   3. import it over HTTPS with a DataVolume spec that carries the sha256 checksum of
#      the served file and the expected block hash of the disk
#   4. print the log, the termination message, and an independent check of the target
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
vimport=$top/build/vimport
demo=$top/build/demo
rm -rf "$demo" && mkdir -p "$demo/srv" "$demo/nginx"

echo "== 1. a real disk image: GPT + ext4 with the files of /usr/share/doc"
# big enough for what /usr/share/doc holds on this machine, with room to spare
doc_mib=$(du -sm /usr/share/doc | cut -f1)
size_mib=$(((doc_mib * 3 / 2 + 64 + 63) / 64 * 64))
"$top/hack/make-test-image.sh" "$demo/disk.raw" "$size_mib" /usr/share/doc
zstd -q -19 -T0 "$demo/disk.raw" -o "$demo/srv/disk.raw.zst"
sgdisk -p "$demo/disk.raw" | sed -n '/^Number/,$p'
ls -ls "$demo/disk.raw" "$demo/srv/disk.raw.zst" | sed "s|$demo/||"

echo "== 2. nginx on 127.0.0.1 with a CA made for this demo"
"$top/tests/e2e/nginx-fixture.sh" start "$demo/nginx" "$demo/srv" >/dev/null
trap '"$top/tests/e2e/nginx-fixture.sh" stop "$demo/nginx" >/dev/null 2>&1 || true' EXIT
# shellcheck disable=SC1091
. "$demo/nginx/env"
url=https://localhost:$NGINX_TLS_PORT/disk.raw.zst
echo "serving $url"

checksum=sha256:$(sha256sum "$demo/srv/disk.raw.zst" | cut -d' ' -f1)
blockhash=sha256:$("$vimport" sum "$demo/disk.raw" | cut -d' ' -f1)
cat >"$demo/spec.yaml" <<YAML
apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: demo
spec:
  source:
    http:
      url: "$url"
      checksum: "$checksum"
      certConfigMap: demo-ca
  storage:
    resources:
      requests:
        storage: ${size_mib}Mi
vimport:
  expectedBlockHash: "$blockhash"
  terminationMessagePath: $demo/termination-log
  target:
    path: $demo/disk.img
  mounts:
    certs: $TEST_CA_DIR
YAML
echo "== 3. vimport import --spec $demo/spec.yaml"
sed 's/^/   | /' "$demo/spec.yaml"
set +e
"$vimport" import --spec "$demo/spec.yaml"
rc=$?
set -e

echo "== 4. result (exit code $rc)"
python3 -m json.tool "$demo/termination-log"
echo "independent check:"
echo "  cmp target vs source image: $(cmp "$demo/disk.img" "$demo/disk.raw" && echo identical)"
echo "  vimport sum of the target:  sha256:$("$vimport" sum "$demo/disk.img" | cut -d' ' -f1)"
echo "  expected block hash:        $blockhash"
echo "  target allocation:          $(du -h "$demo/disk.img" | cut -f1) of $(du -h --apparent-size "$demo/disk.img" | cut -f1) (holes skipped)"
[ "$rc" -eq 0 ] && grep -q '"Import Complete"' "$demo/termination-log"
echo "demo: import complete and verified"
