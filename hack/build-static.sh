#!/usr/bin/env bash
# Build build/vimport-static: the same sources as build/vimport, linked fully static
# against the libraries of hack/build-static-deps.sh (curl, libnbd, isa-l) and Debian's .a files
# (OpenSSL, libyaml, zlib, libdeflate, liblzma, libzstd, c-ares).
#
#   hack/build-static.sh [BUILD]        (default build; `make static` calls it)
#
# The objects go to BUILD/static/ through the project Makefile's own rules, so the
# static binary is compiled exactly like the dynamic one; only pkg-config's search path
# (our prefix first) and the link line (-static, pkg-config --static) differ.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
cd "$top"

log() { echo "build-static: $*" >&2; }
die() { log "$*"; exit 1; }

hack/build-static-deps.sh "$build/static-deps"

prefix=$(cd "$build/static-deps/prefix" && pwd)
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
pkgs=(libcurl libnbd libssl libcrypto yaml-0.1 zlib libdeflate liblzma libzstd libisal)
libs=$(pkg-config --static --libs "${pkgs[@]}") ||
  die "pkg-config cannot find ${pkgs[*]} in $PKG_CONFIG_PATH or the system; run hack/install-deps.sh"
case " $(pkg-config --cflags-only-I libcurl) " in
  *" -I$prefix/include "* | *" -I$prefix/include/"*) ;;
  *) [[ -f $prefix/include/curl/curl.h ]] || die "curl headers missing from $prefix" ;;
esac

# The linker warns that getaddrinfo/gethostbyname/getservbyname need glibc's shared NSS
# modules at run time: those calls sit in libnbd's TCP connect, OpenSSL's BIO helpers and
# c-ares' service-name lookup, none on vimport's paths (HTTP names go through c-ares,
# NBD through a Unix socket). tests/e2e/test_container.sh resolves a name from /etc/hosts
# in the FROM scratch image to keep that true.
# -static-pie is not used: glibc's static-pie start-up has no benefit for a container
# entrypoint, and plain -static is what `file` and `ldd` recognise everywhere.
make --no-print-directory BUILD="$build/static" \
  LIBS="-static $libs -lpthread" "$build/static/vimport"
cp "$build/static/vimport" "$build/vimport-static.tmp"
mv "$build/vimport-static.tmp" "$build/vimport-static"

# A dynamic binary here would fail in the FROM scratch image at its first exec.
if ldd "$build/vimport-static" >/dev/null 2>&1; then
  die "$build/vimport-static is dynamically linked: $(ldd "$build/vimport-static" | tr '\n' ' ')"
fi
if command -v file >/dev/null; then
  file -b "$build/vimport-static" | grep -q "statically linked" ||
    die "$build/vimport-static: file says: $(file -b "$build/vimport-static")"
fi
log "$build/vimport-static: $(stat -c %s "$build/vimport-static") bytes, statically linked"
