#!/bin/sh
# Builds helm-render from Debian's Go packages (no network): Sprig v3 is packaged
# without its /v3 module suffix, so a private GOPATH with symlinks bridges the two.
#   build.sh OUTPUT WORKDIR
set -eu
out="$1" work="$2" src="$(cd "$(dirname "$0")" && pwd)"
gocode=/usr/share/gocode/src
mkdir -p "$work/src/github.com/Masterminds/sprig" "$work/src/github.com/Masterminds/semver" "$work/src/helmrender"
ln -sfn "$gocode/github.com/Masterminds/sprig" "$work/src/github.com/Masterminds/sprig/v3"
ln -sfn "$gocode/github.com/Masterminds/semver" "$work/src/github.com/Masterminds/semver/v3"
cp "$src/main.go" "$work/src/helmrender/main.go"
cd "$work"
GOPATH="$work:/usr/share/gocode" GO111MODULE=off GOFLAGS= GOCACHE="$work/gocache" go build -o "$out" helmrender
