locals {
  kubeconfig_path = var.kubeconfig_path != "" ? var.kubeconfig_path : abspath("${path.root}/.kube/${var.cluster_name}.yaml")

  # The same labels the GKE node pools carry, so the chart's node selectors mean the same thing.
  pool_labels = {
    for name, pool in var.node_pools : name => merge(pool.labels, {
      "shipyard.io/pool" = name
      "shipyard.io/role" = pool.role
    })
  }
  workers = flatten([
    for name, pool in var.node_pools : [for _ in range(pool.count) : local.pool_labels[name]]
  ])

  config = yamlencode({
    kind       = "Cluster"
    apiVersion = "kind.x-k8s.io/v1alpha4"
    name       = var.cluster_name
    nodes = concat(
      [{ role = "control-plane", image = var.node_image }],
      [for labels in local.workers : { role = "worker", image = var.node_image, labels = labels }],
    )
  })
}

# The cluster, made and removed by the kind CLI. A changed configuration replaces the cluster
# (kind cannot reshape a running one).
resource "terraform_data" "cluster" {
  input = {
    name       = var.cluster_name
    kubeconfig = local.kubeconfig_path
    config     = local.config
  }

  provisioner "local-exec" {
    interpreter = ["/bin/bash", "-c"]
    command     = <<-EOT
      set -euo pipefail
      command -v kind >/dev/null || { echo "error: the kind CLI is not on PATH (https://kind.sigs.k8s.io)" >&2; exit 1; }
      mkdir -p "$(dirname "$KUBECONFIG_PATH")"
      if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
        kind export kubeconfig --name "$CLUSTER" --kubeconfig "$KUBECONFIG_PATH"
        exit 0
      fi
      config=$(mktemp)
      trap 'rm -f "$config"' EXIT
      printf '%s\n' "$KIND_CONFIG" >"$config"
      kind create cluster --name "$CLUSTER" --config "$config" --kubeconfig "$KUBECONFIG_PATH" --wait "$WAIT"s
    EOT
    environment = {
      CLUSTER         = var.cluster_name
      KUBECONFIG_PATH = local.kubeconfig_path
      KIND_CONFIG     = local.config
      WAIT            = var.wait_seconds
    }
  }

  provisioner "local-exec" {
    when        = destroy
    interpreter = ["/bin/bash", "-c"]
    command     = "kind delete cluster --name \"$CLUSTER\" --kubeconfig \"$KUBECONFIG_PATH\""
    environment = {
      CLUSTER         = self.output.name
      KUBECONFIG_PATH = self.output.kubeconfig
    }
  }
}
