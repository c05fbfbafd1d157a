output "kubeconfig_path" {
  description = "KUBECONFIG for the cluster."
  value       = module.cluster.kubeconfig_path
}

output "kube_context" {
  description = "kubectl context of the cluster."
  value       = module.cluster.kube_context
}

output "namespace" {
  description = "Namespace of the Shipyard release."
  value       = module.platform.namespace
}

output "release" {
  description = "Helm release of Shipyard."
  value       = module.platform.release
}

output "endpoints" {
  description = "In-cluster URLs (kubectl port-forward to reach them)."
  value       = module.platform.endpoints
}

output "hourly_cost_estimate" {
  description = "kind runs on this machine: no cloud cost."
  value       = module.platform.hourly_cost_estimate
}
