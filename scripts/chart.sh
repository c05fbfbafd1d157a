#!/usr/bin/env bash
# Lint, render, validate and test the Helm chart helm/shipyard — offline, with the tools that
# scripts/tools.sh builds into the tools cache.
#
#   scripts/chart.sh tools            build what is missing: scripts/tools.sh (helm, helm-unittest,
#                                     kubeconform + Kubernetes schemas), checkov in its own venv
#                                     (pip) and the monitoring CRD schemas (npm; Node >= 18)
#   scripts/chart.sh lint             helm lint --strict with every ci/*-values.yaml
#   scripts/chart.sh render [DIR]     helm template per ci/*-values.yaml into DIR/<profile>.yaml
#                                     (default build/chart)
#   scripts/chart.sh validate [DIR]   kubeconform -strict on DIR/*.yaml (Kubernetes 1.33 schemas
#                                     plus the monitoring.coreos.com ones `tools` derives)
#   scripts/chart.sh unittest         helm-unittest suites (helm/shipyard/tests/*_test.yaml)
#   scripts/chart.sh checkov [DIR]    checkov on DIR/*.yaml (skips: helm/checkov.yaml, each with why)
#   scripts/chart.sh golden           rewrite the golden renderings helm/golden/<profile>.yaml
#   scripts/chart.sh all              lint, render, validate, unittest, checkov
#   scripts/chart.sh test             tools, then the chart's test tier
#                                     (pytest tests/integration/test_helm_chart.py)
#   scripts/chart.sh --help           this text
#
# Nothing here touches the network except `tools` (the Go module proxy, PyPI and npm).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CHART=$ROOT/helm/shipyard
GOLDEN=$ROOT/helm/golden
TOOLS=${SHIPYARD_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shipyard/tools}
BIN=$TOOLS/bin
CHECKOV_VERSION=3.3.30 # bump here; `scripts/chart.sh tools` reinstalls on a change
CHECKOV_VENV=$TOOLS/venvs/checkov
# Strict JSON schemas of the Prometheus Operator kinds the chart renders, derived from the
# TypeScript models npm ships for them (no extra properties, like kubeconform -strict).
PROMETHEUS_OPERATOR_MODELS_VERSION=6.0.0 # @kubernetes-models/prometheus-operator
TS_JSON_SCHEMA_GENERATOR_VERSION=2.4.0   # newer releases need Node 22
MONITORING_KINDS=(ServiceMonitor PodMonitor PrometheusRule)
MONITORING_SCHEMAS=$TOOLS/schemas/monitoring
RELEASE=shipyard
NAMESPACE=shipyard
# Render as for a cluster running kube-prometheus-stack (there the API server announces it);
# monitoring.enabled then decides. The test tier also renders without it.
API_VERSIONS=(--api-versions monitoring.coreos.com/v1)

die() { printf 'error: %s\n' "$*" >&2; exit 1; }
need() {
    [[ -x $BIN/$1 ]] || die "$BIN/$1 is missing: run scripts/tools.sh (or scripts/chart.sh tools)"
}
profiles() { find "$CHART/ci" -name '*-values.yaml' | sort; }
profile_name() { local base=${1##*/}; echo "${base%-values.yaml}"; }

render_one() { # render_one VALUES: the profile's manifests on stdout
    "$BIN/helm" template "$RELEASE" "$CHART" --namespace "$NAMESPACE" -f "$1" "${API_VERSIONS[@]}"
}

tool_checkov() {
    local stamp=$CHECKOV_VENV/.version python=${PYTHON:-python3}
    if [[ -x $CHECKOV_VENV/bin/checkov && $(cat "$stamp" 2>/dev/null) == "$CHECKOV_VERSION" ]]; then
        echo "==> checkov $CHECKOV_VERSION: up to date"
        return
    fi
    echo "==> checkov $CHECKOV_VERSION: installing into $CHECKOV_VENV"
    rm -rf "$CHECKOV_VENV"
    "$python" -m venv "$CHECKOV_VENV"
    "$CHECKOV_VENV/bin/pip" install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION"
    echo "$CHECKOV_VERSION" >"$stamp"
}

tool_monitoring_schemas() {
    local version=$PROMETHEUS_OPERATOR_MODELS_VERSION/$TS_JSON_SCHEMA_GENERATOR_VERSION
    local stamp=$MONITORING_SCHEMAS/.version src=$TOOLS/src/monitoring-schemas
    local log=$TOOLS/logs/monitoring-schemas.log kind t0=$SECONDS
    if [[ -f $MONITORING_SCHEMAS/LOCATION && $(cat "$stamp" 2>/dev/null) == "$version" ]]; then
        echo "==> monitoring CRD schemas $version: up to date"
        return
    fi
    command -v npm >/dev/null || die "the monitoring CRD schemas need Node.js and npm"
    echo "==> monitoring CRD schemas $version: deriving"
    rm -rf "$src" "$MONITORING_SCHEMAS"
    mkdir -p "$src" "$MONITORING_SCHEMAS/monitoring.coreos.com" "$TOOLS/logs"
    printf '{"name": "shipyard-monitoring-schemas", "private": true, "dependencies": {%s, %s}}\n' \
        "\"@kubernetes-models/prometheus-operator\": \"$PROMETHEUS_OPERATOR_MODELS_VERSION\"" \
        "\"ts-json-schema-generator\": \"$TS_JSON_SCHEMA_GENERATOR_VERSION\"" >"$src/package.json"
    printf '{"compilerOptions": {"module": "nodenext", "moduleResolution": "nodenext", "skipLibCheck": true}, "files": ["kinds.ts"]}\n' \
        >"$src/tsconfig.json"
    for kind in "${MONITORING_KINDS[@]}"; do
        printf 'export type { I%s } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/%s";\n' \
            "$kind" "$kind"
    done >"$src/kinds.ts"
    (cd "$src" && npm install --no-audit --no-fund --loglevel=error) >"$log" 2>&1 ||
        die "npm install failed (log: $log)"
    for kind in "${MONITORING_KINDS[@]}"; do
        (cd "$src" && node_modules/.bin/ts-json-schema-generator --path kinds.ts \
            --tsconfig tsconfig.json --type "I$kind" --no-type-check --jsDoc none \
            -o "$MONITORING_SCHEMAS/monitoring.coreos.com/${kind,,}_v1.json") >>"$log" 2>&1 ||
            die "the schema of $kind failed (log: $log)"
    done
    echo "$MONITORING_SCHEMAS/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json" \
        >"$MONITORING_SCHEMAS/LOCATION"
    echo "$version" >"$stamp"
    echo "==> monitoring CRD schemas: derived in $((SECONDS - t0)) s"
}

cmd_tools() {
    "$ROOT/scripts/tools.sh"
    tool_checkov
    tool_monitoring_schemas
}

cmd_lint() {
    need helm
    local values
    for values in $(profiles); do
        echo "==> helm lint --strict ($(profile_name "$values"))"
        "$BIN/helm" lint --strict "$CHART" --namespace "$NAMESPACE" -f "$values" --quiet
    done
}

cmd_render() {
    need helm
    local out=${1:-$ROOT/build/chart} values
    mkdir -p "$out"
    for values in $(profiles); do
        render_one "$values" >"$out/$(profile_name "$values").yaml"
    done
    echo "==> rendered $(profiles | wc -l) profiles into $out"
}

cmd_validate() {
    need kubeconform
    local dir=${1:-$ROOT/build/chart}
    [[ -f $TOOLS/schemas/kubernetes/LOCATION ]] || die "no Kubernetes schemas: run scripts/tools.sh"
    [[ -f $MONITORING_SCHEMAS/LOCATION ]] || die "no monitoring CRD schemas: run scripts/chart.sh tools"
    # Every kind has a schema, so none is skipped; -strict also rejects unknown fields.
    "$BIN/kubeconform" -strict -summary \
        -schema-location "$(cat "$TOOLS/schemas/kubernetes/LOCATION")" \
        -schema-location "$(cat "$MONITORING_SCHEMAS/LOCATION")" \
        "$dir"/*.yaml
}

cmd_unittest() {
    need helm-unittest
    "$BIN/helm-unittest" --color=false "$CHART"
}

cmd_checkov() {
    [[ -x $CHECKOV_VENV/bin/checkov ]] || die "checkov is missing: run scripts/chart.sh tools"
    local dir=${1:-$ROOT/build/chart}
    "$CHECKOV_VENV/bin/checkov" --quiet --compact --framework kubernetes \
        --config-file "$ROOT/helm/checkov.yaml" --directory "$dir"
}

cmd_golden() {
    need helm
    local values name
    mkdir -p "$GOLDEN"
    for values in $(profiles); do
        name=$(profile_name "$values")
        {
            echo "# Generated by scripts/chart.sh golden from helm/shipyard/ci/$name-values.yaml — do not edit."
            render_one "$values"
        } >"$GOLDEN/$name.yaml"
    done
    echo "==> wrote $GOLDEN"
}

case ${1:-} in
    -h | --help | "") sed -n '2,/^set /{/^set /d;s/^# \{0,1\}//p}' "$0"; exit 0 ;;
    tools) cmd_tools ;;
    lint) cmd_lint ;;
    render) cmd_render "${2:-}" ;;
    validate) cmd_validate "${2:-}" ;;
    unittest) cmd_unittest ;;
    checkov) cmd_checkov "${2:-}" ;;
    golden) cmd_golden ;;
    all)
        out=$(mktemp -d)
        trap 'rm -rf "$out"' EXIT
        cmd_lint && cmd_render "$out" && cmd_validate "$out" && cmd_unittest && cmd_checkov "$out"
        ;;
    test)
        cmd_tools
        exec "$ROOT/.venv/bin/pytest" "$ROOT/tests/integration/test_helm_chart.py" -q
        ;;
    *) die "unknown command '$1' (try --help)" ;;
esac
