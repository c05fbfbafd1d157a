#!/usr/bin/env bash
# Build the upstream Go tools Shipyard needs into a cache outside the repository, once.
#
#   scripts/tools.sh            helm, helm-unittest, kubeconform + offline Kubernetes schemas,
#                               tofu + the hashicorp/kubernetes, hashicorp/helm and
#                               hashicorp/google providers (google: 30+ min cold on 2 cores),
#                               tflint (everything `make infra-test` needs)
#   scripts/tools.sh google     the same ("terraform" too; kept for older notes)
#   scripts/tools.sh --help     this text
#
# Cache: ${SHIPYARD_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shipyard/tools} (settings.tools_dir)
#   bin/                      binaries (put on PATH)
#   go/                       GOPATH, module and build caches (nothing lands in ~/go)
#   schemas/kubernetes/       JSON schemas for kubeconform; LOCATION holds its -schema-location
#   tofu-mirror/, tofurc      provider filesystem mirror and a CLI config using it
#                             (TF_CLI_CONFIG_FILE=<cache>/tofurc tofu init works offline)
#   tflint-plugins/           TFLINT_PLUGIN_DIR, with TFLINT_DISABLE_VERSION_CHECK=1 (never
#                             `tflint --init`: it downloads); empty: tflint-ruleset-google is not
#                             served by the module proxy (403), so tflint runs its bundled rules
#   logs/<tool>.log           output of the last build of each tool
#
# Idempotent: a stamp per tool records the version built; a tool whose stamp matches is skipped.
set -euo pipefail

HELM_VERSION=v3.21.4
HELM_UNITTEST_VERSION=v0.8.2 # v1.x needs a wrapper module for a replace; the standalone binary suffices
KUBECONFORM_VERSION=v0.7.0
KUBE_MINOR=33                        # helm's default KubeVersion and the schema set: Kubernetes 1.33
KUBERNETES_VALIDATE_VERSION=1.37.0   # PyPI package that ships the schemas (1.25 … 1.37)
TOFU_VERSION=v1.12.6                 # newest OpenTofu the module proxy serves
# The providers tag v3+/v8 releases without a /vN module path, so the proxy serves them only as
# pseudo-versions of a commit. The commits below are the ones it serves, each on main after the
# release the mirror labels it with (the newest entry of that commit's CHANGELOG.md).
PROVIDER_KUBERNETES=(3.2.1 v1.13.4-0.20260821094251-3a33fb6cc605) # main, 2026-08-21
PROVIDER_HELM=(3.2.0 v1.3.3-0.20260629194918-a4f1c1d8b008)        # main, 2026-06-29
PROVIDER_GOOGLE=(8.0.0 v1.20.1-0.20260828184646-f3721fb45fa3)     # main, 2026-08-28
TFLINT_VERSION=v0.64.0
# tflint-ruleset-google is not built: the module proxy serves no version of it (403).

TOOLS=${SHIPYARD_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shipyard/tools}
BIN=$TOOLS/bin
SCHEMAS=$TOOLS/schemas/kubernetes
MIRROR=$TOOLS/tofu-mirror
PYTHON=${PYTHON:-python3}
GO=$(type -P go) || { echo "error: tools.sh needs Go (https://go.dev/dl)" >&2; exit 1; }
PLATFORM=$("$GO" env GOOS)_$("$GO" env GOARCH)
export GOPATH=$TOOLS/go GOMODCACHE=$TOOLS/go/pkg/mod GOCACHE=$TOOLS/go/cache GOBIN=$BIN
export GOFLAGS="-buildvcs=false -modcacherw" # no .git to stamp; a writable cache can be rm -rf'd

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
fail() { printf '%s\n' "$*"; exit 1; } # inside a build: becomes the last log line, quoted by step
go() { nice -n 19 "$GO" "$@"; }         # the 2 cores are shared: builds take what is left

case ${1:-} in
    -h | --help) sed -n '2,/^set /{/^set /d;s/^# \{0,1\}//p}' "$0"; exit 0 ;;
    "" | google | terraform) ;;
    *) die "unknown argument '$1' (try --help)" ;;
esac
mkdir -p "$BIN" "$TOOLS/logs" "$TOOLS/stamps" "$TOOLS/src"

# step NAME VERSION OUTPUT COMMAND…: run COMMAND (logged) unless OUTPUT exists and NAME's stamp
# says VERSION. One progress line per tool; a failure stops the script naming the tool.
step() {
    local name=$1 version=$2 output=$3 t0=$SECONDS rc=0 lock
    local stamp=$TOOLS/stamps/$name log=$TOOLS/logs/$name.log
    shift 3
    exec {lock}>"$stamp.lock" # a background `tools.sh google` and a foreground run may overlap
    flock "$lock"
    if [[ -e $output && $(cat "$stamp" 2>/dev/null) == "$version" ]]; then
        say "$name $version: up to date"
    else
        printf '==> %s %s: building … ' "$name" "$version"
        rm -f "$stamp"
        # Run as a background job and wait: inside `if`/`||` bash would ignore `set -e`.
        ("$@") >"$log" 2>&1 &
        wait $! || rc=$?
        ((rc == 0)) || { echo; die "$name $version failed after $((SECONDS - t0)) s: $(tail -n1 "$log") (log: $log)"; }
        echo "$version" >"$stamp"
        echo "built in $((SECONDS - t0)) s"
    fi
    exec {lock}>&-
}

# go_wrapped MODULE VERSION PACKAGE OUTPUT [LDFLAGS]: build PACKAGE of MODULE@VERSION through a
# throwaway wrapper module, because `go install pkg@version` refuses modules whose go.mod has
# `replace` directives (OpenTofu's hcl fork): the wrapper copies them and the go line.
go_wrapped() {
    local module=$1 version=$2 package=$3 output=$4 ldflags=${5:-} dir gomod
    dir=$TOOLS/src/${output##*/}
    rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
    gomod=$(go mod download -json "$module@$version" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
    [[ -f $gomod ]] || fail "no go.mod for $module@$version"
    {
        echo "module shipyard.local/tools/${output##*/}"
        echo "require $module $version"
        # The go line too: without one Go loads the unpruned (go 1.16) module graph, which needs
        # go.mod files of old versions the proxy may not serve.
        awk '/^go / {print} /^replace \(/ {block = 1} block || /^replace / {print} block && /^\)/ {block = 0}' "$gomod"
    } >go.mod
    go get "$package@$version"
    go build -trimpath -ldflags "-s -w $ldflags" -o "$output" "$package"
}

build_helm() {
    local x=helm.sh/helm/v3 chart=$TOOLS/src/probe-chart
    # Without these the default KubeVersion is 1.20 and charts' kubeVersion constraints fail.
    go install -ldflags "-s -w -X $x/internal/version.version=$HELM_VERSION \
        -X $x/pkg/chartutil.k8sVersionMinor=$KUBE_MINOR -X $x/pkg/lint/rules.k8sVersionMinor=$KUBE_MINOR" \
        "$x/cmd/helm@$HELM_VERSION"
    [[ $("$BIN/helm" version --template '{{.Version}}') == "$HELM_VERSION" ]] ||
        fail "helm version prints $("$BIN/helm" version --short), not $HELM_VERSION"
    rm -rf "$chart" && mkdir -p "$chart/templates"
    printf 'apiVersion: v2\nname: probe\nversion: 0.1.0\nkubeVersion: ">=1.28.0-0"\n' >"$chart/Chart.yaml"
    printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: probe}\n' >"$chart/templates/cm.yaml"
    [[ $("$BIN/helm" template probe "$chart") == *"kind: ConfigMap"* ]] || fail "helm template of a kubeVersion chart failed"
}

# Offline schemas: kubernetes-validate's "local-strict" set (additionalProperties: false), rewritten
# once so kubeconform resolves "$ref"s to the _definitions.json next to each file instead of the
# (unreachable) "$id" URL.
build_schemas() {
    local venv=$TOOLS/venvs/kubernetes-validate version
    [[ -x $venv/bin/python ]] || "$PYTHON" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
    version=$("$venv/bin/python" - "$KUBE_MINOR" "$SCHEMAS" <<'EOF'
import json, pathlib, shutil, sys
import kubernetes_validate
minor, out = int(sys.argv[1]), pathlib.Path(sys.argv[2])
root = pathlib.Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
sets = {tuple(map(int, d.name[1:].split("-")[0].split("."))): d for d in root.glob("v*-local-strict")}
version = min(sets, key=lambda v: (abs(v[1] - minor), -v[1]))  # 1.<minor>, else the nearest
tmp, dst = out / ".tmp", out / ".".join(map(str, version))
shutil.rmtree(tmp, ignore_errors=True)
tmp.mkdir(parents=True)
for src in sets[version].glob("*.json"):
    schema = json.loads(src.read_text().replace('"/api/_definitions.json#', '"_definitions.json#'))
    schema.pop("$id", None)
    (tmp / src.name).write_text(json.dumps(schema))
shutil.rmtree(dst, ignore_errors=True)
tmp.rename(dst)
print(dst.name)
EOF
    )
    check_schemas "$SCHEMAS/$version/{{.ResourceKind}}{{.KindSuffix}}.json"
    echo "$SCHEMAS/$version/{{.ResourceKind}}{{.KindSuffix}}.json" >"$SCHEMAS/LOCATION"
}

# A Deployment and a Service must pass -strict, a Deployment with an unknown field must not.
check_schemas() {
    local kc=("$BIN/kubeconform" -strict -summary -schema-location "$1") out
    local deploy='{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"a"},"spec":{"selector":{"matchLabels":{"app":"a"}},"template":{"metadata":{"labels":{"app":"a"}},"spec":{"containers":[{"name":"a","image":"a:1"}]}}}}'
    local service='{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"selector":{"app":"a"},"ports":[{"port":80}]}}'
    out=$(printf '%s\n---\n%s\n' "$deploy" "$service" | "${kc[@]}" -) || true
    [[ $out == *"Valid: 2, Invalid: 0, Errors: 0, Skipped: 0"* ]] || fail "kubeconform with $1: $out"
    out=$("${kc[@]}" - <<<"${deploy/'"selector"'/'"replicaz":1,"selector"'}") || true
    [[ $out == *replicaz*"Invalid: 1"* ]] || fail "kubeconform with $1 accepts an unknown field: $out"
}

build_tofu() {
    go_wrapped github.com/opentofu/opentofu "$TOFU_VERSION" github.com/opentofu/opentofu/cmd/tofu \
        "$BIN/tofu" "-X github.com/opentofu/opentofu/version.dev=no" # else it reports "-dev"
    # -json: the plain output starts with warnings when TF_CLI_CONFIG_FILE names a missing file.
    [[ $("$BIN/tofu" version -json) == *"\"terraform_version\": \"${TOFU_VERSION#v}\""* ]] ||
        fail "tofu version: $("$BIN/tofu" version -json)"
}

# build_provider NAME VERSION PSEUDO-VERSION [LDFLAGS]: build into bin/, link into the mirror
# under both registry hosts (configs say hashicorp/x, which tofu reads as registry.opentofu.org;
# lock files written by terraform name registry.terraform.io).
build_provider() {
    local name=$1 version=$2 pseudo=$3 ldflags=${4:-} host dir
    go_wrapped "github.com/hashicorp/terraform-provider-$name" "$pseudo" \
        "github.com/hashicorp/terraform-provider-$name" "$BIN/terraform-provider-$name" "$ldflags"
    for host in registry.opentofu.org registry.terraform.io; do
        dir=$MIRROR/$host/hashicorp/$name/$version/$PLATFORM
        mkdir -p "$dir" && ln -f "$BIN/terraform-provider-$name" "$dir/terraform-provider-${name}_v$version"
    done
}
mirrored() { echo "$MIRROR/registry.opentofu.org/hashicorp/$1/$2/$PLATFORM/terraform-provider-$1_v$2"; }

started=$SECONDS
step helm "$HELM_VERSION" "$BIN/helm" build_helm
step helm-unittest "$HELM_UNITTEST_VERSION" "$BIN/helm-unittest" \
    go install "github.com/helm-unittest/helm-unittest/cmd/helm-unittest@$HELM_UNITTEST_VERSION"
step kubeconform "$KUBECONFORM_VERSION" "$BIN/kubeconform" \
    go install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
step kubernetes-schemas "1.$KUBE_MINOR/$KUBERNETES_VALIDATE_VERSION" "$SCHEMAS/LOCATION" build_schemas
step tofu "$TOFU_VERSION" "$BIN/tofu" build_tofu
step provider-kubernetes "${PROVIDER_KUBERNETES[0]}" "$(mirrored kubernetes "${PROVIDER_KUBERNETES[0]}")" \
    build_provider kubernetes "${PROVIDER_KUBERNETES[@]}"
step provider-helm "${PROVIDER_HELM[0]}" "$(mirrored helm "${PROVIDER_HELM[0]}")" \
    build_provider helm "${PROVIDER_HELM[@]}" "-X main.Version=${PROVIDER_HELM[0]}"
# A CLI config that installs providers from the mirror only: `tofu init` never goes online.
printf 'provider_installation {\n  filesystem_mirror {\n    path = "%s"\n  }\n}\n' "$MIRROR" >"$TOOLS/tofurc"
# The google provider is the slowest build by far; its stamp keeps it for every later run.
step provider-google "${PROVIDER_GOOGLE[0]}" "$(mirrored google "${PROVIDER_GOOGLE[0]}")" \
    build_provider google "${PROVIDER_GOOGLE[@]}" \
    "-X github.com/hashicorp/terraform-provider-google/version.ProviderVersion=${PROVIDER_GOOGLE[0]}"
step tflint "$TFLINT_VERSION" "$BIN/tflint" go install "github.com/terraform-linters/tflint@$TFLINT_VERSION"
say "tools in $BIN ($((SECONDS - started)) s)"
say "kubeconform -schema-location '$(cat "$SCHEMAS/LOCATION")'"
say "tofu: TF_CLI_CONFIG_FILE=$TOOLS/tofurc (filesystem mirror $MIRROR)"
