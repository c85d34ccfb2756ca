# vimport's container image: a fully static binary, CA certificates, busybox as sh and cp,
# and Debian's qemu-nbd with exactly the libraries it needs.
#
#   podman build -t vimport .           (or docker build; needs Debian's registry mirror)
#
# Where no registry is reachable, make the base image from apt sources and give it the
# name below, as tests/e2e/test_dockerfile.sh does (it builds this file for real):
#   mmdebstrap --variant=minbase bookworm base.tar && podman import base.tar docker.io/library/debian:12
#
# The build stage runs the same scripts as a developer's machine (hack/install-deps.sh,
# hack/build-static-deps.sh via `make static`), so the image binary is the one the e2e
# suite tests. Where no registry is reachable, `make image` builds only the final stage
# (Containerfile.scratch) from the host's build/vimport-static.

FROM docker.io/library/debian:12 AS build
WORKDIR /src
COPY Makefile ./
COPY hack/ hack/
# Install the packages first so this layer is cached across source edits.
RUN hack/install-deps.sh
COPY cmd/ cmd/
COPY pkg/ pkg/
RUN make static
# Debug info stays in the build stage, as hack/build-static-image.sh strips its copy.
RUN strip -o /vimport-static build/vimport-static
RUN mkdir /qemu-nbd && hack/image-qemu-nbd-files.sh /qemu-nbd
RUN hack/image-links.sh /links

# The final stage is the same as Containerfile.scratch: keep them in step.
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /vimport-static /vimport
# CDI's registry node pull runs `sh -c "cp /usr/bin/cdi-containerimage-server /shared/server"`
# in an init container of this image (then /shared/server in the containerDisk, which has
# no libc: the binary is static): Debian's static busybox, for sh and cp only.
COPY --from=build /bin/busybox /bin/busybox
# Symbolic links (hack/image-links.sh): the other programs CDI runs from the importer
# image, by path, to /vimport, which picks the program by the name it is started by
# (cmd/vimport/main.c); /bin/sh and /bin/cp to busybox. One copy of each binary.
COPY --from=build /links/ /
# vimport reads vhdx and sparse vmdk through qemu-nbd, which libnbd starts from PATH
# (pkg/nbd/nbd.c): Debian's, with its ldd closure and its loader at its PT_INTERP path,
# as hack/image-qemu-nbd-files.sh lists them. Its vhdx and vmdk drivers are built in, so
# no module directory is needed.
COPY --from=build /qemu-nbd/ /
ENV PATH=/usr/bin:/bin
# CDI's importer runs as uid 107; no passwd file is needed for a numeric user.
USER 107
ENTRYPOINT ["/vimport"]
