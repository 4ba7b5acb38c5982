#!/usr/bin/env bash
# infra/cluster-start.sh N: start validator N again (after infra/cluster-kill.sh N) and put it back
# in NGINX's upstream once it campaigns in etcd.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/cluster-lib.sh"
i="${1:?usage: infra/cluster-start.sh N}"
start_validator "$i"
wait_validators "$i"
nginx_running && render_nginx
log "validator $i started"
