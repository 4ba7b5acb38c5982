#!/usr/bin/env bash
# Headless Chromium for the test that renders `txe bench`'s HTML report: Debian's chromium
# package, installed when missing (CI runs as root on a fresh machine). Prints its path.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
if ! command -v chromium >/dev/null 2>&1; then apt_install chromium; fi
command -v chromium
