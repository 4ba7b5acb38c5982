#!/usr/bin/env bash
# Prometheus for the test that scrapes a real engine with infra/prometheus.yml: Debian's
# prometheus package, installed when missing. Only the binary is used; the package's own service
# is not started here (no systemd). Prints its path.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
if ! command -v prometheus >/dev/null 2>&1; then apt_install --no-install-recommends prometheus; fi
command -v prometheus
