#!/usr/bin/env bash
# Unpacks Debian's arm64 Node.js and the libraries it loads into a folder, installing nothing, so that
# vserve's arm64 build can run under qemu-aarch64 on an x86-64 machine (test/native/neon-cross.test.ts):
#   bash scripts/arm64-node-sysroot.sh .cache/arm64-node
# Needs root (it enables arm64 packages in apt) and Debian's package archive.
set -euo pipefail
dest=${1:?usage: arm64-node-sysroot.sh FOLDER}
dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
apt-get update -qq
# nodejs:arm64 with every arm64 package it depends on (its libraries), and Node's modules kept in their own
# architecture-independent packages (node-*).
packages=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
  --no-enhances nodejs:arm64 | grep -E '^([^ <]*:arm64|node-[^ :]*)$' | sort -u)
downloads=$(mktemp -d)
chmod 777 "$downloads"  # apt's download user writes there
(cd "$downloads" && apt-get download -qq $packages)
mkdir -p "$dest"
for deb in "$downloads"/*.deb; do dpkg -x "$deb" "$dest"; done
rm -rf "$downloads"
echo "arm64 Node.js unpacked into $dest: $(ls "$dest/usr/bin/node")"
