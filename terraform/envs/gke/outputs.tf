output "cluster_name" {
  description = "GKE cluster name."
  value       = module.gke.cluster_name
}

output "get_credentials_command" {
  description = "Writes the cluster's credentials into your kubeconfig."
  value       = module.gke.get_credentials_command
}

output "kubeconfig_path" {
  description = "Kubeconfig scripts/infra.sh wrote for the cluster."
  value       = local.kubeconfig_path
}

output "kube_context" {
  description = "kubectl context of the cluster."
  value       = module.gke.kube_context
}

output "bucket" {
  description = "Versioned artifacts bucket (MLflow artifacts and the Triton model repository)."
  value       = module.gke.bucket
}

output "model_repository_uri" {
  description = "Where the pipeline's export step writes models."
  value       = module.gke.model_repository_uri
}

output "cloud_sql" {
  description = "MLflow's Cloud SQL instance (null when in-cluster PostgreSQL)."
  value       = module.gke.cloud_sql
}

output "service_accounts" {
  description = "Workload identity service accounts."
  value       = module.gke.service_accounts
}

output "endpoints" {
  description = "In-cluster URLs of the platform (kubectl port-forward to reach them)."
  value       = module.platform.endpoints
}

output "namespace" {
  description = "Namespace of the Shipyard release."
  value       = module.platform.namespace
}

output "release" {
  description = "Helm release of Shipyard."
  value       = module.platform.release
}

output "hourly_cost_estimate" {
  description = "USD per hour of the nodes at the current sizes (cost_model prices; see terraform/README.md for the full estimate)."
  value       = module.platform.hourly_cost_estimate
}
