output "cluster_name" {
  description = "Name of the kind cluster."
  value       = terraform_data.cluster.output.name
}

output "kubeconfig_path" {
  description = "Kubeconfig file written by kind (KUBECONFIG=<this> kubectl …)."
  value       = terraform_data.cluster.output.kubeconfig
}

output "kube_context" {
  description = "kubectl context of the cluster inside kubeconfig_path."
  value       = "kind-${terraform_data.cluster.output.name}"
}

output "pool_labels" {
  description = "Labels of each pool's nodes (shipyard.io/pool, shipyard.io/role and the extras): node selectors for the chart."
  value       = local.pool_labels
}

output "config" {
  description = "The kind cluster configuration (YAML) the CLI was given."
  value       = local.config
}
