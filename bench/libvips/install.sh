#!/bin/sh
# Installs what the libvips comparison needs on Debian: libvips with its
# headers (cgo builds govips against it), which brings libheif (HEIC and
# AVIF through libde265, x265, dav1d and aom) and libwebp.
set -eu
if [ "$(id -u)" -ne 0 ]; then
	echo "run as root (apt-get)" >&2
	exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libvips-dev pkg-config gcc >/dev/null
pkg-config --modversion vips
