#!/usr/bin/env bash
# infra/cluster-delay.sh MS: sets the network delay between the validators of a cluster started
# with TXE_CLUSTER_DELAY_MS (infra/cluster-up.sh), through Toxiproxy: MS/2 each way on every
# validator's connections to the Kafka nodes, on the fronts' connections to the leader's engine, and
# on the attestations the validators hand each other.
# A block goes leader -> broker -> follower, so it takes MS longer from one validator to another;
# an attestation the same. etcd (the election) is not delayed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/cluster-lib.sh"
ms="${1:?usage: infra/cluster-delay.sh MS}"
[ -f "$CLUSTER/toxiproxy.port" ] || die "the cluster runs without proxies: start it with TXE_CLUSTER_DELAY_MS=0 infra/cluster-up.sh"
set_delay "$ms"
log "delay between validators: $ms ms"
