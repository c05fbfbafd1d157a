# Values known at plan time (the tests and the providers read them), each published only once
# the cluster exists (depends_on), so whatever uses them waits for it.

output "cluster_name" {
  description = "Name of the kind cluster."
  value       = var.cluster_name
  depends_on  = [terraform_data.cluster]
}

output "kubeconfig_path" {
  description = "Kubeconfig file written by kind (KUBECONFIG=<this> kubectl …)."
  value       = local.kubeconfig_path
  depends_on  = [terraform_data.cluster]
}

output "kube_context" {
  description = "kubectl context of the cluster inside kubeconfig_path."
  value       = "kind-${var.cluster_name}"
  depends_on  = [terraform_data.cluster]
}

output "pool_labels" {
  description = "Labels of each pool's nodes (shipyard.io/pool, shipyard.io/role and the extras): node selectors for the chart."
  value       = local.pool_labels
}

output "config" {
  description = "The kind cluster configuration (YAML) the CLI was given."
  value       = local.config
}
