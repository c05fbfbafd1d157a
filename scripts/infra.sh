#!/usr/bin/env bash
# Shipyard's infrastructure as code (terraform/): offline tests, and a cluster up or down.
#
#   scripts/infra.sh test [PART…]   the offline test tier; PARTs (default: all, in this order;
#                                   validate:DIR and unit:DIR limit those to one folder of
#                                   terraform/, e.g. unit:modules/gke):
#       fmt        tofu fmt -check on terraform/
#       validate   tofu init (filesystem mirror only) + tofu validate, every module and env
#       unit       tofu test (mock providers) in every module that has tests/
#       values     the chart values the platform module derives, rendered by helm and checked
#                  by kubeconform -strict (kind and GKE-with-GPU-and-canary inputs)
#       tflint     tflint --recursive, built-in terraform rules (terraform/.tflint.hcl)
#       checkov    checkov on terraform/ (skips: terraform/.checkov.yaml and inline, each with why)
#   scripts/infra.sh up kind|gke    tofu init + apply (cluster first, then the platform), wait for
#                                   the release, `helm test`; gke needs PROJECT and REGION (or
#                                   project_id/region in terraform/envs/gke/terraform.tfvars) and
#                                   AUTHORIZED_CIDR (or master_authorized_networks there)
#   scripts/infra.sh down kind|gke  tofu destroy of that environment
#   scripts/infra.sh --help         this text
#
# Tools: tofu, the providers, helm, kubeconform, tflint come from the tools cache that
# `make chart-tools` fills (scripts/tools.sh); checkov from `scripts/chart.sh tools`. `test`
# never touches the network: providers install from the cache's filesystem mirror, and it works
# on a copy of terraform/ under build/infra so that no .terraform or lock file lands in the tree.
# `up`/`down` use the registries as usual and need kind + docker (kind) or gcloud with
# gke-gcloud-auth-plugin (gke), and kubectl. TOFU=terraform uses Terraform instead of OpenTofu.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TF=$ROOT/terraform
TOOLS=${SHIPYARD_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shipyard/tools}
BIN=$TOOLS/bin
WORK=$ROOT/build/infra
MODULES=(modules/kind modules/platform/values modules/platform modules/gke)
ENVS=(envs/kind envs/gke)
PARTS=(fmt validate unit values tflint checkov)
CHECKOV=$TOOLS/venvs/checkov/bin/checkov
NAMESPACE=shipyard
RELEASE=shipyard

die() { printf 'error: %s\n' "$*" >&2; exit 1; }
say() { printf '==> %s\n' "$*"; }
need_tool() { # need_tool NAME: a binary of the tools cache
    [[ -x $BIN/$1 ]] || die "$1 is missing from $BIN: run make chart-tools (scripts/tools.sh builds it)"
}
need_cmd() { # need_cmd NAME WHY
    command -v "$1" >/dev/null || die "$1 is not on PATH: $2"
}
tofu_offline() { TF_CLI_CONFIG_FILE=$TOOLS/tofurc TF_PLUGIN_CACHE_DIR=$TOOLS/tofu-plugin-cache \
    TF_IN_AUTOMATION=1 "$BIN/tofu" "$@"; }

# -- test ------------------------------------------------------------------------------------

# A copy of terraform/ (and a link to helm/ for the chart path) whose .terraform folders survive
# between runs, so init only links providers the first time.
sync_work() {
    mkdir -p "$WORK/terraform" "$TOOLS/tofu-plugin-cache"
    ln -sfn "$ROOT/helm" "$WORK/helm"
    find "$WORK/terraform" -type f -not -path '*/.terraform/*' -delete
    (cd "$TF" && tar cf - --exclude=.terraform --exclude='*.tfstate*' --exclude=.terraform.lock.hcl \
        --exclude=.kube --exclude=terraform.tfvars --exclude=secrets.auto.tfvars .) |
        (cd "$WORK/terraform" && tar xf -)
}

init_dir() { # init_dir DIR (relative to terraform/): offline init in the work copy
    local dir=$WORK/terraform/$1 log
    log=$(tofu_offline -chdir="$dir" init -backend=false -input=false -no-color 2>&1) ||
        die "tofu init in terraform/$1 failed (offline, mirror $TOOLS/tofu-mirror):
$log"
}

part_fmt() {
    need_tool tofu
    say "tofu fmt -check terraform/"
    local out
    out=$("$BIN/tofu" fmt -check -recursive -diff -no-color "$TF" 2>&1) ||
        die "tofu fmt: these files need \`tofu fmt -recursive terraform\`:
$out"
}

part_validate() { # part_validate [DIR…]: default every module and environment
    need_tool tofu
    [[ -f $TOOLS/tofurc ]] || die "$TOOLS/tofurc is missing: run make chart-tools"
    sync_work
    local dir out dirs=("$@")
    ((${#dirs[@]})) || dirs=("${MODULES[@]}" "${ENVS[@]}")
    for dir in "${dirs[@]}"; do
        [[ -d $TF/$dir ]] || die "no folder terraform/$dir"
        init_dir "$dir"
        out=$(tofu_offline -chdir="$WORK/terraform/$dir" validate -no-color 2>&1) ||
            die "tofu validate terraform/$dir:
$out"
        say "tofu validate terraform/$dir: ok"
    done
}

part_unit() { # part_unit [DIR…]: default every module with tests/
    need_tool tofu
    sync_work
    local dir out dirs=("$@")
    ((${#dirs[@]})) || dirs=("${MODULES[@]}")
    for dir in "${dirs[@]}"; do
        [[ -d $TF/$dir/tests ]] || { (($#)) && die "terraform/$dir has no tests/"; continue; }
        init_dir "$dir"
        out=$(tofu_offline -chdir="$WORK/terraform/$dir" test -no-color 2>&1) ||
            die "tofu test terraform/$dir:
$out"
        say "tofu test terraform/$dir: $(grep -Eo '[0-9]+ passed, [0-9]+ failed' <<<"$out" | tail -n1)"
    done
}

# values_case NAME HCL: a root module calling modules/platform/values with HCL as its arguments.
values_case() {
    local dir=$WORK/values/$1
    mkdir -p "$dir"
    rm -f "$dir"/*.tf "$dir"/terraform.tfstate*
    printf 'module "values" {\n  source = "%s"\n%s\n}\n\noutput "yaml" {\n  value = module.values.yaml\n}\n' \
        "../../terraform/modules/platform/values" "$2" >"$dir/main.tf"
    tofu_offline -chdir="$dir" init -input=false -no-color >/dev/null 2>&1 || die "tofu init of the values case $1 failed"
    tofu_offline -chdir="$dir" apply -auto-approve -input=false -no-color >/dev/null ||
        die "the values module refused the $1 case"
    tofu_offline -chdir="$dir" output -raw yaml >"$dir/values.yaml"
}

part_values() {
    need_tool tofu; need_tool helm; need_tool kubeconform
    [[ -f $TOOLS/schemas/kubernetes/LOCATION ]] || die "no Kubernetes schemas: run make chart-tools"
    sync_work
    values_case kind '
  size             = "small"
  cpu_pool         = { replicas = 1, node_selector = { "shipyard.io/role" = "cpu-serving" } }
  gateway          = { replicas = 1, node_selector = { "shipyard.io/role" = "cpu-serving" } }
  redis            = { secret_name = "shipyard-redis" }
  feature_storage  = { size = "1Gi", storage_class = "standard" }
  monitoring       = { enabled = true }
  kfp_host         = "http://ml-pipeline.kubeflow.svc:8888"'
    values_case gke '
  size     = "standard"
  image    = { digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000" }
  gpu_pool = { enabled = true, replicas = 2, node_selector = { "shipyard.io/role" = "gpu" } }
  cpu_pool = { replicas = 2, node_selector = { "shipyard.io/role" = "cpu-serving" } }
  models = {
    fraud-scoring = {
      stable_version = "3"
      canary = { version = "4", weight = 10, analysis = { steps = [10, 50, 100], max_error_ratio = 0.01, min_requests = 500 } }
    }
  }
  model_repository = { source = "gcs", gcs_bucket = "p-shipyard-artifacts", service_account = "shipyard-serving@p.iam.gserviceaccount.com" }
  mlflow           = { artifacts_destination = "gs://p-shipyard-artifacts/mlflow", service_account = "shipyard-mlflow@p.iam.gserviceaccount.com" }
  redis            = { secret_name = "shipyard-redis" }
  monitoring       = { enabled = true }
  egress           = { postgres_cidrs = ["10.30.0.5/32"] }
  cost             = { gpu_hour = 0.35, cpu_core_hour = 0.0316, spot_discount = 0.6, daily_budget = 120 }'
    local name out
    for name in kind gke; do
        out=$("$BIN/helm" template "$RELEASE" "$ROOT/helm/shipyard" --namespace "$NAMESPACE" \
            --api-versions monitoring.coreos.com/v1 -f "$WORK/values/$name/values.yaml" 2>&1 >"$WORK/values/$name/rendered.yaml") ||
            die "helm template with the values the platform module derives for $name:
$out"
        # The monitoring.coreos.com kinds have no schema in the Kubernetes set: skipped here,
        # validated by the chart's own test tier.
        out=$("$BIN/kubeconform" -strict -summary -skip ServiceMonitor,PodMonitor,PrometheusRule \
            -schema-location "$(cat "$TOOLS/schemas/kubernetes/LOCATION")" "$WORK/values/$name/rendered.yaml" 2>&1) ||
            die "kubeconform on the $name rendering:
$out"
        say "chart values ($name): helm template + kubeconform -strict ok ($(tail -n1 <<<"$out"))"
    done
}

part_tflint() {
    need_tool tflint
    say "tflint --recursive terraform/ (built-in terraform rules)"
    local out
    mkdir -p "$TOOLS/tflint-plugins"
    out=$(cd "$TF" && TFLINT_DISABLE_VERSION_CHECK=1 TFLINT_PLUGIN_DIR=$TOOLS/tflint-plugins \
        "$BIN/tflint" --recursive --config "$TF/.tflint.hcl" --no-color 2>&1) ||
        die "tflint:
$out"
}

part_checkov() {
    [[ -x $CHECKOV ]] || die "checkov is missing from $TOOLS/venvs/checkov: run make chart-tools"
    say "checkov --framework terraform terraform/"
    local out
    out=$("$CHECKOV" --quiet --compact --framework terraform --config-file "$TF/.checkov.yaml" \
        --directory "$TF" 2>&1) || die "checkov:
$out"
}

cmd_test() {
    local parts=("$@") part t0=$SECONDS
    ((${#parts[@]})) || parts=("${PARTS[@]}")
    for part in "${parts[@]}"; do
        case $part in
        validate:* | unit:*) "part_${part%%:*}" "${part#*:}" ;;
        *)
            [[ " ${PARTS[*]} " == *" $part "* ]] || die "unknown test part '$part' (parts: ${PARTS[*]})"
            "part_$part"
            ;;
        esac
    done
    say "infra tests passed in $((SECONDS - t0)) s"
}

# -- up / down -------------------------------------------------------------------------------

tofu_bin() {
    if [[ -n ${TOFU:-} ]]; then need_cmd "$TOFU" "TOFU names the OpenTofu/Terraform binary to use"; echo "$TOFU"
    elif command -v tofu >/dev/null; then echo tofu
    elif [[ -x $BIN/tofu ]]; then echo "$BIN/tofu"
    else die "no tofu: install OpenTofu, set TOFU=terraform, or run make chart-tools"
    fi
}

# Passwords for the data services, made once per environment and kept out of git (0600).
ensure_secrets() { # ensure_secrets DIR NAME…
    local file=$1/secrets.auto.tfvars name
    shift
    [[ -f $file ]] && return
    (
        umask 077
        for name in "$@"; do
            printf '%s = "%s"\n' "$name" "$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
        done >"$file"
    )
    say "generated $(basename "$file") in ${1#"$ROOT"/} (git-ignored; keep it: it holds the database passwords)"
}

tfvar_set() { # tfvar_set DIR NAME: whether terraform.tfvars sets NAME
    [[ -f $1/terraform.tfvars ]] && grep -Eq "^[[:space:]]*$2[[:space:]]*=" "$1/terraform.tfvars"
}

gke_args() { # the -var flags of the gke environment, from PROJECT, REGION, AUTHORIZED_CIDR
    local dir=$1
    GKE_ARGS=()
    if [[ -n ${PROJECT:-} ]]; then GKE_ARGS+=(-var "project_id=$PROJECT")
    elif ! tfvar_set "$dir" project_id; then die "set PROJECT=<project id> (or project_id in terraform/envs/gke/terraform.tfvars)"
    fi
    if [[ -n ${REGION:-} ]]; then GKE_ARGS+=(-var "region=$REGION")
    elif ! tfvar_set "$dir" region; then die "set REGION=<region, e.g. us-central1> (or region in terraform/envs/gke/terraform.tfvars)"
    fi
    if [[ -n ${AUTHORIZED_CIDR:-} ]]; then
        [[ $AUTHORIZED_CIDR =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$ ]] || die "AUTHORIZED_CIDR must look like 203.0.113.10/32"
        GKE_ARGS+=(-var "master_authorized_networks=[{cidr_block=\"$AUTHORIZED_CIDR\",display_name=\"make up\"}]")
    elif ! tfvar_set "$dir" master_authorized_networks; then
        die "set AUTHORIZED_CIDR=<your address>/32 (or master_authorized_networks in terraform/envs/gke/terraform.tfvars): only those reach the control plane"
    fi
}

output() { "$TOFU_BIN" -chdir="$1" output -raw "$2"; }
# evaluate DIR EXPR [ARGS…]: an expression against the state. A targeted apply (phase one) writes
# no root outputs, so what phase two needs from the cluster comes from here.
evaluate() {
    local dir=$1 expr=$2
    shift 2
    echo "$expr" | "$TOFU_BIN" -chdir="$dir" console "$@" | sed 's/^"//; s/"$//'
}

wait_and_test() { # wait_and_test DIR: the release's workloads ready, then `helm test`
    local dir=$1 kubeconfig context helm
    kubeconfig=$(output "$dir" kubeconfig_path)
    context=$(output "$dir" kube_context)
    helm=$(command -v helm || echo "$BIN/helm")
    [[ -x $helm ]] || die "helm is missing: install it or run make chart-tools"
    say "waiting for the deployments in $NAMESPACE"
    kubectl --kubeconfig "$kubeconfig" --context "$context" -n "$NAMESPACE" wait \
        --for=condition=Available deployment --all --timeout=900s
    say "helm test $RELEASE"
    "$helm" test "$RELEASE" -n "$NAMESPACE" --kubeconfig "$kubeconfig" --kube-context "$context" --logs --timeout 10m
    "$TOFU_BIN" -chdir="$dir" output endpoints
    "$TOFU_BIN" -chdir="$dir" output hourly_cost_estimate
}

cmd_up() {
    local cluster=$1 dir=$TF/envs/$1
    # Missing variables and cluster tools first: they are the likely mistakes.
    if [[ $cluster == gke ]]; then
        gke_args "$dir"
        need_cmd gcloud "make up CLUSTER=gke needs the Google Cloud CLI, logged in (gcloud auth application-default login)"
        need_cmd gke-gcloud-auth-plugin "gcloud components install gke-gcloud-auth-plugin"
    else
        need_cmd kind "make up CLUSTER=kind needs kind (https://kind.sigs.k8s.io)"
        need_cmd docker "kind runs its nodes as docker containers"
    fi
    TOFU_BIN=$(tofu_bin)
    need_cmd kubectl "the readiness wait and the KFP manifests need it (https://kubernetes.io/docs/tasks/tools/)"
    case $cluster in
    kind)
        ensure_secrets "$dir" postgres_password redis_password
        "$TOFU_BIN" -chdir="$dir" init -input=false
        "$TOFU_BIN" -chdir="$dir" apply -input=false -auto-approve -target=module.cluster
        local image
        image=$(docker image ls --format '{{.Repository}}:{{.Tag}}' ghcr.io/shipyard-mlops/shipyard | head -n1)
        if [[ -n $image ]]; then
            say "loading $image into kind"
            kind load docker-image "$image" --name "$(evaluate "$dir" module.cluster.cluster_name)"
        fi
        "$TOFU_BIN" -chdir="$dir" apply -input=false -auto-approve
        ;;
    gke)
        ensure_secrets "$dir" mlflow_db_password redis_password
        "$TOFU_BIN" -chdir="$dir" init -input=false
        "$TOFU_BIN" -chdir="$dir" apply -input=false -auto-approve "${GKE_ARGS[@]}" -target=module.gke
        KUBECONFIG=$(evaluate "$dir" local.kubeconfig_path "${GKE_ARGS[@]}") \
            bash -c "$(evaluate "$dir" module.gke.get_credentials_command "${GKE_ARGS[@]}")"
        "$TOFU_BIN" -chdir="$dir" apply -input=false -auto-approve "${GKE_ARGS[@]}"
        ;;
    esac
    wait_and_test "$dir"
}

cmd_down() {
    local cluster=$1 dir=$TF/envs/$1
    TOFU_BIN=$(tofu_bin)
    [[ -d $dir/.terraform ]] || die "terraform/envs/$cluster was never initialised here: nothing to destroy"
    case $cluster in
    kind) "$TOFU_BIN" -chdir="$dir" destroy -input=false -auto-approve ;;
    gke)
        gke_args "$dir"
        # Fresh credentials for the providers that uninstall the releases.
        KUBECONFIG=$(evaluate "$dir" local.kubeconfig_path "${GKE_ARGS[@]}") \
            bash -c "$(evaluate "$dir" module.gke.get_credentials_command "${GKE_ARGS[@]}")" || true
        "$TOFU_BIN" -chdir="$dir" destroy -input=false -auto-approve "${GKE_ARGS[@]}"
        ;;
    esac
}

cluster_arg() {
    case ${1:-} in
    kind | gke) ;;
    "") die "which cluster? scripts/infra.sh $2 kind|gke" ;;
    *) die "unknown cluster '$1': use kind or gke" ;;
    esac
}

case ${1:-} in
-h | --help | "") sed -n '2,/^set /{/^set /d;s/^# \{0,1\}//p}' "$0"; exit 0 ;;
test) shift; cmd_test "$@" ;;
up) cluster_arg "${2:-}" up; cmd_up "$2" ;;
down) cluster_arg "${2:-}" down; cmd_down "$2" ;;
*) die "unknown command '$1' (try --help)" ;;
esac
