#!/bin/sh
# The symbolic links of vimport's image, made under DIR (copied to / by the Dockerfile and
# Containerfile.scratch): each program CDI runs from the importer image, by path, links to
# /vimport, which picks the program by the name it is started by (cmd/vimport/main.c);
# sh and cp link to Debian's static busybox, which picks its applet the same way.
#
#   hack/image-links.sh DIR
set -eu
dir=${1:?usage: hack/image-links.sh DIR}
mkdir -p "$dir/usr/bin" "$dir/bin"
for program in cdi-image-size-detection cdi-containerimage-server cdi-source-update-poller; do
  ln -sfn /vimport "$dir/usr/bin/$program"
done
ln -sfn busybox "$dir/bin/sh"
ln -sfn busybox "$dir/bin/cp"
