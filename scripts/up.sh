#!/usr/bin/env bash
# `make up`: start the platform and run the main job, then show where everything is.
#   scripts/up.sh            embedded stack on this machine (default)
#   scripts/up.sh kind|gke   a cluster, provisioned by terraform/envs/<cluster>
set -euo pipefail
cd "$(dirname "$0")/.."
cluster=${1:-}
shipyard=${SHIPYARD:-.venv/bin/shipyard}

case "$cluster" in
"")
    "$shipyard" up
    # The main job: data -> validated, redacted events -> features -> Feast online store, then
    # the training pipeline once, so that the platform starts with a champion model.
    "$shipyard" refresh
    "$shipyard" pipeline run training --local --unless-champion \
        --owner "${SHIPYARD_OWNER:-${USER:-platform}}" --team "${SHIPYARD_TEAM:-platform}"
    # Serve the champion: Triton pools, the gateway's in-process fallback, the stable route.
    "$shipyard" serve publish fraud-scoring --alias champion
    ;;
kind | gke)
    # terraform/envs/<cluster>: cluster, platform releases, readiness, `helm test` (see
    # terraform/README.md). gke reads PROJECT, REGION and AUTHORIZED_CIDR from the environment.
    PROJECT=${PROJECT:-} REGION=${REGION:-} exec scripts/infra.sh up "$cluster"
    ;;
*)
    echo "error: unknown CLUSTER='$cluster': use CLUSTER=kind, CLUSTER=gke, or leave it empty for the embedded stack" >&2
    exit 2
    ;;
esac
