#!/usr/bin/env bash
# Start PostgreSQL and Kafka (in parallel) and print the connection settings on
# stdout (logs go to stderr), so `set -a; eval "$(infra/up.sh)"; set +a` works.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
run_parallel pg-start.sh kafka-start.sh || die "infra/up.sh: a server failed to start (see above)"
print_env
