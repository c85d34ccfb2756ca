#!/usr/bin/env bash
# Build the libraries that build/vimport-static needs and Debian ships no usable static
# archive of, from Debian's own source packages, into a prefix:
#
#   hack/build-static-deps.sh [DIR]      (default build/static-deps)
#
#   DIR/prefix/{include,lib,lib/pkgconfig}   what the static link uses first
#   DIR/src/                                 the unpacked Debian sources
#   DIR/stamp-<name>                         a library is rebuilt only when its stamp
#                                            (source version + configure flags) changes,
#                                            so a second run takes well under a second
#
# Why each one is built here:
#   curl    Debian's libcurl.a wants GSSAPI, LDAP, librtmp, libssh2, nghttp2, libpsl and
#           brotli, most of which have no .a. We build http/https only, with OpenSSL and
#           zlib, and c-ares as the resolver: glibc's getaddrinfo in a static binary goes
#           through NSS, which may dlopen modules that do not exist in a FROM scratch image
#           (nsswitch.conf naming sss, systemd, mdns...). c-ares reads /etc/hosts and
#           /etc/resolv.conf itself, which is what a pod and `podman run` provide.
#   libnbd  Debian's libnbd.a is built with GnuTLS, whose static link needs p11-kit, which
#           has no .a. vimport talks NBD to a local qemu-nbd over a Unix socket only, so
#           libnbd is built without TLS and without libxml2.
#   isa-l   (Debian's source package libisal) libisal-dev ships only the shared library.
#           Built with its own Makefile.unx (nasm), which makes the .a alone.
# Everything else (libssl/libcrypto, libyaml, zlib, libdeflate, liblzma, libzstd, libcares) comes as
# .a from the Debian -dev packages hack/install-deps.sh installs.
#
# Sources come from a deb-src entry this script manages in
# /etc/apt/sources.list.d/vimport-src.sources (the same mirror and suites as the deb
# entries); `apt-get update` runs only when apt does not know the source package yet.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$top/build/static-deps}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
prefix=$dir/prefix
src=$dir/src
jobs=$(nproc 2>/dev/null || echo 2)
src_list=/etc/apt/sources.list.d/vimport-src.sources

log() { echo "build-static-deps: $*" >&2; }
die() { log "$*"; exit 1; }

curl_flags=(
  --disable-shared --enable-static --with-pic
  --with-openssl --with-zlib --enable-ares
  --with-ca-bundle=/etc/ssl/certs/ca-certificates.crt --with-ca-path=/etc/ssl/certs
  --disable-ldap --disable-ldaps --disable-rtsp --disable-dict --disable-telnet
  --disable-tftp --disable-pop3 --disable-imap --disable-smb --disable-smtp
  --disable-gopher --disable-mqtt --disable-ftp --disable-file --disable-manual
  --without-gssapi --without-libidn2 --without-libpsl --without-nghttp2
  --without-nghttp3 --without-ngtcp2 --without-brotli --without-zstd
  --without-librtmp --without-libssh2 --without-libssh --without-libgsasl
  --without-hyper --without-quiche --without-msh3
)
nbd_flags=(
  --disable-shared --enable-static --with-pic
  --without-gnutls --without-libxml2
  --disable-ocaml --disable-python --disable-golang --disable-fuse
)

# The deb-src entry, mirroring the deb entries of debian.sources.
ensure_deb_src() {
  if [[ ! -f $src_list ]]; then
    [[ $(id -u) -eq 0 ]] || die "$src_list is missing and only root can add it; run as root once"
    log "adding the deb-src entry $src_list"
    cat >"$src_list" <<'EOF'
# Added by vimport's hack/build-static-deps.sh: Debian sources for the static build.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  fi
}

# Print the newest source version apt knows for package $1, updating the lists once.
src_version() {
  local v
  v=$(apt-cache showsrc "$1" 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -1)
  if [[ -z $v ]]; then
    log "apt does not know the source of $1 yet: apt-get update"
    apt-get update -q >&2 || die "apt-get update failed; the static build needs Debian's deb-src lists"
    v=$(apt-cache showsrc "$1" 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -1)
  fi
  [[ -n $v ]] || die "no Debian source package '$1' in $src_list"
  echo "$v"
}

# Unpack source package $1 version $2 into $src/$1 (Debian patches applied).
fetch_source() {
  local pkg=$1 ver=$2 tmp
  rm -rf "${src:?}/$pkg" "${src:?}/$pkg.tmp"
  tmp=$src/$pkg.tmp
  mkdir -p "$tmp"
  log "apt-get source $pkg=$ver"
  (cd "$tmp" && apt-get source -q "$pkg=$ver" >&2) || die "apt-get source $pkg=$ver failed"
  local d
  d=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d | head -1)
  [[ -n $d ]] || die "apt-get source $pkg left no directory in $tmp"
  mv "$d" "$src/$pkg"
  rm -rf "$tmp"
}

stamp_ok() { [[ -f $dir/stamp-$1 && $(cat "$dir/stamp-$1") == "$2" ]]; }

build_curl() {
  local ver stamp
  ver=$(src_version curl)
  stamp="curl $ver ${curl_flags[*]}"
  if stamp_ok curl "$stamp" && [[ -f $prefix/lib/libcurl.a ]]; then
    log "curl $ver: cached"
    return
  fi
  fetch_source curl "$ver"
  log "building curl $ver (http/https, OpenSSL, zlib, c-ares)"
  (
    cd "$src/curl"
    # The last two Debian patches turn the tree into the GnuTLS and NSS flavours;
    # debian/rules pops them for the OpenSSL build, and so do we.
    for p in 99_nss.patch 90_gnutls.patch; do
      if grep -qx "$p" debian/patches/series; then
        patch -R -p1 -s <"debian/patches/$p"
      fi
    done
    # Debian's patches touch configure.ac; regenerate like debian/rules does.
    autoreconf -fi >"$dir/curl-autoreconf.log" 2>&1
    ./configure --prefix="$prefix" --libdir="$prefix/lib" "${curl_flags[@]}" \
      >"$dir/curl-configure.log" 2>&1
    make -j"$jobs" -C lib >"$dir/curl-make.log" 2>&1
    make -C lib install >>"$dir/curl-make.log" 2>&1
    make -C include install >>"$dir/curl-make.log" 2>&1
    make install-pkgconfigDATA >>"$dir/curl-make.log" 2>&1
  ) || die "building curl failed; see $dir/curl-*.log"
  echo "$stamp" >"$dir/stamp-curl"
}

build_isal() {
  local ver stamp
  ver=$(src_version libisal)
  stamp="libisal $ver Makefile.unx lib"
  if stamp_ok libisal "$stamp" && [[ -f $prefix/lib/libisal.a ]]; then
    log "libisal $ver: cached"
    return
  fi
  command -v nasm >/dev/null || die "nasm is missing; run hack/install-deps.sh"
  fetch_source libisal "$ver"
  log "building libisal $ver (the static library only)"
  (
    cd "$src/libisal"
    make -f Makefile.unx -j"$jobs" lib >"$dir/libisal-make.log" 2>&1
    install -d "$prefix/lib/pkgconfig" "$prefix/include/isa-l"
    install -m 644 bin/isa-l.a "$prefix/lib/libisal.a"
    install -m 644 include/*.h "$prefix/include/isa-l/"
    cat >"$prefix/lib/pkgconfig/libisal.pc" <<EOF
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: libisal
Description: ISA-L (static, built by vimport's hack/build-static-deps.sh)
Version: ${ver%%-*}
Libs: -L\${libdir} -lisal
Cflags: -I\${includedir}
EOF
  ) || die "building libisal failed; see $dir/libisal-make.log"
  echo "$stamp" >"$dir/stamp-libisal"
}

build_libnbd() {
  local ver stamp
  ver=$(src_version libnbd)
  stamp="libnbd $ver ${nbd_flags[*]}"
  if stamp_ok libnbd "$stamp" && [[ -f $prefix/lib/libnbd.a ]]; then
    log "libnbd $ver: cached"
    return
  fi
  fetch_source libnbd "$ver"
  log "building libnbd $ver (no TLS, no libxml2)"
  (
    cd "$src/libnbd"
    autoreconf -fi >"$dir/libnbd-autoreconf.log" 2>&1
    ./configure --prefix="$prefix" --libdir="$prefix/lib" "${nbd_flags[@]}" \
      >"$dir/libnbd-configure.log" 2>&1
    # Only the library: the tools, bindings and tests are not needed.
    make -j"$jobs" -C common/utils >"$dir/libnbd-make.log" 2>&1
    make -j"$jobs" -C lib >>"$dir/libnbd-make.log" 2>&1
    make -C lib install >>"$dir/libnbd-make.log" 2>&1
    make -C include install >>"$dir/libnbd-make.log" 2>&1 || true
  ) || die "building libnbd failed; see $dir/libnbd-*.log"
  [[ -f $prefix/include/libnbd.h ]] || install -m 644 "$src/libnbd/include/libnbd.h" "$prefix/include/"
  echo "$stamp" >"$dir/stamp-libnbd"
}

# The static archives that must come from Debian's -dev packages.
check_debian_archives() {
  local a missing=()
  for a in libssl.a libcrypto.a libyaml.a libz.a libdeflate.a liblzma.a libzstd.a libcares.a; do
    [[ -f /usr/lib/x86_64-linux-gnu/$a || -f /usr/lib/$(gcc -print-multiarch)/$a ]] || missing+=("$a")
  done
  ((${#missing[@]} == 0)) ||
    die "missing static archives ${missing[*]}; run hack/install-deps.sh (libssl-dev libyaml-dev zlib1g-dev libdeflate-dev liblzma-dev libzstd-dev libc-ares-dev)"
}

command -v autoreconf >/dev/null || die "autoreconf is missing; run hack/install-deps.sh (autoconf automake libtool)"
check_debian_archives
ensure_deb_src
mkdir -p "$prefix" "$src"
build_curl
build_libnbd
build_isal
log "done: $prefix"
