#!/usr/bin/env python3
"""CDI's arithmetic and small test fixtures for tests/cdi (python3 stdlib only).

Every formula names the CDI v1.66 file and function it follows; the suite computes the
expected values here, never from vimport's output.

  cdi.py required-space OVERHEAD REQUEST   PVC size the controller asks for
  cdi.py usable-space OVERHEAD AVAILABLE   what CDI leaves for the disk image
  cdi.py available PATH                    free bytes of the filesystem holding PATH
  cdi.py quantity Q                        a Kubernetes quantity ("64Mi") in bytes
  cdi.py json FILE EXPR                    print field EXPR (e.g. '["vimport"]["blockHash"]')
                                           of a JSON file; exit 3 if not JSON, 4 if absent
  cdi.py is-json FILE                      exit 0 if FILE holds a JSON object
  cdi.py range-covers MSG OFFSET           exit 0 if MSG names "bytes A-B" with A<=OFFSET<=B
  cdi.py hostile-tar KIND OUT              write a tar.gz whose one trick is KIND
                                           (dotdot, absolute, symlink, device)
  cdi.py serve-norange DIR PORTFILE SECS   HTTP/1.0 file server on 127.0.0.1 that knows no
                                           Range and sends no Accept-Ranges; exits after SECS
"""
import http.server
import io
import json
import math
import os
import re
import socketserver
import sys
import tarfile
import threading

MIB = 1 << 20
# pkg/util/util.go: DefaultAlignBlockSize = 1 MiB
DEFAULT_ALIGN_BLOCK_SIZE = MIB


def round_down(number, multiple):
    # pkg/util/util.go RoundDown
    return number // multiple * multiple


def round_up(number, multiple):
    # pkg/util/util.go RoundUp (float ceil, as CDI does)
    return int(math.ceil(float(number) / float(multiple))) * multiple


def required_space(overhead, requested):
    # pkg/util/util.go GetRequiredSpace, called by pkg/controller/common/util.go
    # InflateSizeWithOverhead: a Filesystem PVC is asked for this much (Block: no inflation).
    aligned = round_up(requested, DEFAULT_ALIGN_BLOCK_SIZE)
    return int(math.ceil(float(aligned) * (1 + overhead)))


def usable_space(overhead, available):
    # pkg/util/util.go GetUsableSpace
    without = int(math.ceil(float(available) / (1 + overhead)))
    return round_down(without, DEFAULT_ALIGN_BLOCK_SIZE)


def available(path):
    # pkg/importer/file.go GetAvailableSpace: statfs Bavail * Bsize
    st = os.statvfs(path)
    return st.f_bavail * st.f_bsize


_SUFFIX = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
           "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}


def quantity(q):
    m = re.fullmatch(r"(\d+)(|k|M|G|T|Ki|Mi|Gi|Ti)", q)
    if not m:
        raise SystemExit("cdi.py: not a quantity this suite uses: %r" % q)
    return int(m.group(1)) * _SUFFIX[m.group(2)]


def load_json(path):
    try:
        with open(path) as f:
            d = json.load(f)
    except (ValueError, OSError):
        return None
    return d if isinstance(d, dict) else None


def cmd_json(path, expr):
    d = load_json(path)
    if d is None:
        sys.exit(3)
    try:
        v = eval("d" + expr, {"d": d})  # expr is the suite's own subscript string
    except (KeyError, IndexError, TypeError):
        sys.exit(4)
    print(json.dumps(v) if isinstance(v, bool) else v)


def range_covers(msg, offset):
    for a, b in re.findall(r"bytes (\d+)-(\d+)", msg):
        if int(a) <= offset <= int(b):
            return True
    return False


def hostile_tar(kind, out):
    """One legitimate file plus one trick; a safe extractor refuses the archive and
    names the member (every trick's name starts "cdi-suite-")."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.GNU_FORMAT) as t:
        def add_file(name, data=b"x" * 100):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            t.addfile(ti, io.BytesIO(data))
        add_file("ok.txt", b"fine\n")
        if kind == "dotdot":
            add_file("../cdi-suite-dotdot-escape.txt")
        elif kind == "absolute":
            add_file("/tmp/cdi-suite-absolute-escape.txt")
        elif kind == "symlink":
            ti = tarfile.TarInfo("cdi-suite-link")
            ti.type = tarfile.SYMTYPE
            ti.linkname = "/tmp"
            t.addfile(ti)
            add_file("cdi-suite-link/cdi-suite-symlink-escape.txt")
        elif kind == "device":
            ti = tarfile.TarInfo("cdi-suite-devnode")
            ti.type = tarfile.CHRTYPE
            ti.devmajor, ti.devminor = 1, 3
            ti.mode = 0o666
            t.addfile(ti)
        else:
            raise SystemExit("cdi.py: unknown hostile tar kind %r" % kind)
    with open(out, "wb") as f:
        f.write(buf.getvalue())


class NoRangeHandler(http.server.SimpleHTTPRequestHandler):
    # SimpleHTTPRequestHandler ignores Range and sends no Accept-Ranges: the server
    # CDI's http-datasource.go createHTTPReader calls brokenForQemuImg.
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):
        pass


def serve_norange(root, portfile, secs):
    handler = lambda *a, **k: NoRangeHandler(*a, directory=root, **k)  # noqa: E731
    socketserver.TCPServer.allow_reuse_address = True
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    threading.Timer(secs, srv.shutdown).start()  # bounded: dies by itself
    with open(portfile + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(portfile + ".tmp", portfile)
    srv.serve_forever()


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "required-space":
        print(required_space(float(args[0]), int(args[1])))
    elif cmd == "usable-space":
        print(usable_space(float(args[0]), int(args[1])))
    elif cmd == "available":
        print(available(args[0]))
    elif cmd == "quantity":
        print(quantity(args[0]))
    elif cmd == "json":
        cmd_json(args[0], args[1])
    elif cmd == "is-json":
        sys.exit(0 if load_json(args[0]) is not None else 1)
    elif cmd == "range-covers":
        sys.exit(0 if range_covers(args[0], int(args[1])) else 1)
    elif cmd == "hostile-tar":
        hostile_tar(args[0], args[1])
    elif cmd == "serve-norange":
        serve_norange(args[0], args[1], float(args[2]))
    else:
        raise SystemExit("cdi.py: unknown command %r\n%s" % (cmd, __doc__))


if __name__ == "__main__":
    main(sys.argv)
