# Kubeflow Pipelines from its upstream kustomize manifests at a pinned release tag (there is no
# official chart). kubectl fetches them from GitHub at apply time.
resource "terraform_data" "kfp" {
  count = var.install.kfp ? 1 : 0

  input = {
    version    = var.versions.kfp
    kubeconfig = var.kubeconfig_path
    context    = var.kube_context
  }

  provisioner "local-exec" {
    interpreter = ["/bin/bash", "-c"]
    command     = <<-EOT
      set -euo pipefail
      command -v kubectl >/dev/null || { echo "error: kubectl is not on PATH" >&2; exit 1; }
      k() { kubectl --kubeconfig "$KUBECONFIG_PATH" --context "$CONTEXT" "$@"; }
      base=github.com/kubeflow/pipelines/manifests/kustomize
      k apply -k "$base/cluster-scoped-resources?ref=$VERSION"
      k wait --for condition=established --timeout=120s crd/applications.app.k8s.io
      k apply -k "$base/env/platform-agnostic?ref=$VERSION"
      k -n kubeflow wait --for condition=available --timeout=900s deployment/ml-pipeline
    EOT
    environment = {
      KUBECONFIG_PATH = var.kubeconfig_path
      CONTEXT         = var.kube_context
      VERSION         = var.versions.kfp
    }
  }

  provisioner "local-exec" {
    when        = destroy
    interpreter = ["/bin/bash", "-c"]
    command     = <<-EOT
      base=github.com/kubeflow/pipelines/manifests/kustomize
      kubectl --kubeconfig "$KUBECONFIG_PATH" --context "$CONTEXT" delete --ignore-not-found --wait=false \
        -k "$base/env/platform-agnostic?ref=$VERSION" || true
    EOT
    environment = {
      KUBECONFIG_PATH = self.output.kubeconfig
      CONTEXT         = self.output.context
      VERSION         = self.output.version
    }
  }
}
