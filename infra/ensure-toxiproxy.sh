#!/usr/bin/env bash
# Toxiproxy (github.com/Shopify/toxiproxy, pinned) for tests that add network delay between
# processes on this machine (this kernel has no tc netem): built from its Go module with the Go
# toolchain into infra/.cache/toxiproxy/ on first use. Prints the server binary's path.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
VERSION="v2.5.0"
BIN="$CACHE/toxiproxy/$VERSION"
if [ ! -x "$BIN/server" ]; then
  command -v go >/dev/null 2>&1 || die "toxiproxy is built with Go, and go is not installed"
  log "building toxiproxy $VERSION with go install (once)"
  mkdir -p "$BIN"
  GOBIN="$BIN" go install "github.com/Shopify/toxiproxy/v2/cmd/server@$VERSION" >&2
fi
echo "$BIN/server"
