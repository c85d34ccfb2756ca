#!/usr/bin/env python3
"""regcraft: write hostile containerDisk images as OCI image layouts, for tests.

  regcraft.py OUT_DIR RECIPE DISK_FILE [--bomb-bytes N]

Writes an OCI image layout (oci-layout, index.json, blobs/sha256/...) under OUT_DIR with
one image tagged "latest" (push it with `skopeo copy oci:OUT_DIR:latest docker://...`),
linux/amd64, one layer. The layer tars are made here with tarfile because podman build
cannot make them. RECIPEs:

  dotdot     disk/../../../../tmp/vimport-escape-TAG (a regular file whose name climbs out
             of disk/: CDI's safeJoinPaths refuses it as "content filepath is tainted"),
             then a good disk/disk.qcow2
  absolute   /disk/disk.qcow2 and /etc/vimport-escape (absolute names; CDI's hasPrefix
             does not take /disk/ as disk/, so it finds no disk)
  symlink    disk/disk.qcow2 as a symbolic link to /etc/passwd (not a regular file)
  hardlink   data/disk.qcow2 (the disk) and disk/disk.qcow2 a hard link to it
  bomb       disk/disk.img: --bomb-bytes (default 2 GiB) of zeros in a gzip layer of about
             1/1000 of that (DISK_FILE is not used)
  plaintar   disk/disk.qcow2 in an uncompressed tar layer (media type ...tar)

Layers of every recipe but bomb are uncompressed in the layout; skopeo compresses them
with gzip when it pushes to a registry (plaintar is for registries written to directly).
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_TAR = "application/vnd.oci.image.layer.v1.tar"
MT_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


class Zeros(io.RawIOBase):
    def __init__(self, n):
        self.left = n

    def readable(self):
        return True

    def readinto(self, buf):
        n = min(len(buf), self.left)
        buf[:n] = bytes(n)
        self.left -= n
        return n


def add_file(tar, name, path):
    info = tar.gettarinfo(path, arcname=name)
    info.name = name  # gettarinfo strips a leading '/', which the absolute recipe needs
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    with open(path, "rb") as f:
        tar.addfile(info, f)


def add_bytes(tar, name, data, mode=0o644):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def add_link(tar, name, target, kind):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    tar.addfile(info)


def add_dir(tar, name):
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tar.addfile(info)


def layer_tar(recipe, disk, tag):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        if recipe == "dotdot":
            add_dir(tar, "disk")
            add_bytes(tar, "disk/../../../../tmp/vimport-escape-" + tag, b"escaped\n")
            add_file(tar, "disk/disk.qcow2", disk)
        elif recipe == "absolute":
            add_bytes(tar, "/etc/vimport-escape", b"escaped\n")
            add_file(tar, "/disk/disk.qcow2", disk)
        elif recipe == "symlink":
            add_dir(tar, "disk")
            add_link(tar, "disk/disk.qcow2", "/etc/passwd", tarfile.SYMTYPE)
        elif recipe == "hardlink":
            add_dir(tar, "data")
            add_file(tar, "data/disk.qcow2", disk)
            add_dir(tar, "disk")
            add_link(tar, "disk/disk.qcow2", "data/disk.qcow2", tarfile.LNKTYPE)
        elif recipe == "plaintar":
            add_dir(tar, "disk")
            add_file(tar, "disk/disk.qcow2", disk)
        else:
            raise SystemExit("regcraft: unknown recipe %r" % recipe)
    return buf.getvalue()


def bomb_layer(out_path, nbytes):
    """A gzip tar holding nbytes of zeros; returns (diff_id hex) of the tar."""
    tar_hash = hashlib.sha256()

    class HashingGzip(io.RawIOBase):
        def __init__(self, gz):
            self.gz = gz

        def writable(self):
            return True

        def write(self, b):
            tar_hash.update(b)
            return self.gz.write(b)

    with open(out_path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb",
                                                     compresslevel=6, mtime=0) as gz:
        sink = io.BufferedWriter(HashingGzip(gz), buffer_size=1 << 20)
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            add_dir(tar, "disk")
            info = tarfile.TarInfo("disk/disk.img")
            info.size = nbytes
            info.mode = 0o644
            tar.addfile(info, io.BufferedReader(Zeros(nbytes), buffer_size=1 << 20))
        sink.flush()
    return tar_hash.hexdigest()


def put_blob(out, data=None, path=None):
    h = hashlib.sha256()
    if data is not None:
        h.update(data)
        size = len(data)
    else:
        size = 0
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
                size += len(chunk)
    digest = h.hexdigest()
    dest = os.path.join(out, "blobs", "sha256", digest)
    if data is not None:
        with open(dest, "wb") as f:
            f.write(data)
    else:
        os.replace(path, dest)
    return "sha256:" + digest, size


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("recipe")
    ap.add_argument("disk")
    ap.add_argument("--bomb-bytes", type=int, default=2 << 30)
    args = ap.parse_args()
    out = args.out
    os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)
    tag = hashlib.sha256(os.path.abspath(out).encode()).hexdigest()[:12]

    if args.recipe == "bomb":
        tmp = os.path.join(out, "layer.tmp")
        diff_id = "sha256:" + bomb_layer(tmp, args.bomb_bytes)
        layer_digest, layer_size = put_blob(out, path=tmp)
        layer_mt = MT_TAR_GZIP
    else:
        data = layer_tar(args.recipe, args.disk, tag)
        diff_id = "sha256:" + hashlib.sha256(data).hexdigest()
        layer_digest, layer_size = put_blob(out, data=data)
        layer_mt = MT_TAR

    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Labels": {"vimport.test/recipe": args.recipe}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "regcraft.py " + args.recipe}],
    }, sort_keys=True).encode()
    config_digest, config_size = put_blob(out, data=config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": layer_mt, "digest": layer_digest, "size": layer_size}],
    }, sort_keys=True).encode()
    manifest_digest, manifest_size = put_blob(out, data=manifest)
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": MT_MANIFEST, "digest": manifest_digest, "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
