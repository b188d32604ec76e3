#!/usr/bin/env bash
# Builds a stand-in for python:3.11-slim-bookworm where Docker Hub cannot be reached (these CI machines):
# Debian bookworm (debootstrap, minbase) with Debian's Python 3.11 and pip, imported into podman under the
# official image's name, so the repository's Dockerfile builds unchanged. The rootfs tarball is cached in
# $SAM3_CI_CACHE (default /var/cache/sam3-api-ci), outside the repository: a second run only re-imports it,
# and nothing at all happens while the image is still in podman's storage.
#
#   tests/container/standin_base.sh            # idempotent; needs root, debootstrap and podman
#
# Differences from the real image that matter to the Dockerfile: python is /usr/bin/python (python-is-python3)
# and Debian's pip installs into /usr/local/lib/python3.11/dist-packages; the PEP 668 marker is removed, as the
# official image has none, so `pip install` as root works the same.
set -euo pipefail

IMAGE="docker.io/library/python:3.11-slim-bookworm"
CACHE="${SAM3_CI_CACHE:-/var/cache/sam3-api-ci}"
TARBALL="$CACHE/python-3.11-slim-bookworm-standin.tar"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if podman image exists "$IMAGE"; then
    echo "[standin] $IMAGE already present"; exit 0
fi
mkdir -p "$CACHE"
if [ ! -s "$TARBALL" ]; then
    rootfs="$(mktemp -d "$CACHE/rootfs.XXXXXX")"
    trap 'rm -rf "$rootfs"' EXIT
    echo "[standin] debootstrap bookworm into $rootfs (a few minutes)"
    debootstrap --variant=minbase \
        --include=python3,python3-pip,python-is-python3,ca-certificates \
        bookworm "$rootfs" "$MIRROR"
    rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" --numeric-owner -cf "$TARBALL.tmp" .
    mv "$TARBALL.tmp" "$TARBALL"
fi
echo "[standin] podman import $TARBALL as $IMAGE"
podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    "$TARBALL" "$IMAGE"
