output "cluster_name" {
  description = "Name of the GKE cluster."
  value       = google_container_cluster.this.name
}

output "location" {
  description = "Region of the cluster."
  value       = google_container_cluster.this.location
}

output "endpoint" {
  description = "IP address of the control plane (public unless private_endpoint; reachable from master_authorized_networks)."
  value       = google_container_cluster.this.endpoint
  sensitive   = true
}

output "ca_certificate" {
  description = "Base64 PEM of the cluster CA."
  value       = google_container_cluster.this.master_auth[0].cluster_ca_certificate
  sensitive   = true
}

output "kubeconfig" {
  description = "A kubeconfig for the cluster (authenticates through gke-gcloud-auth-plugin, like `gcloud container clusters get-credentials`)."
  sensitive   = true
  value = yamlencode({
    apiVersion      = "v1"
    kind            = "Config"
    current-context = "gke_${var.project_id}_${var.region}_${var.name}"
    clusters = [{
      name = "gke_${var.project_id}_${var.region}_${var.name}"
      cluster = {
        server                     = "https://${google_container_cluster.this.endpoint}"
        certificate-authority-data = google_container_cluster.this.master_auth[0].cluster_ca_certificate
      }
    }]
    users = [{
      name = "gke_${var.project_id}_${var.region}_${var.name}"
      user = {
        exec = {
          apiVersion         = "client.authentication.k8s.io/v1beta1"
          command            = "gke-gcloud-auth-plugin"
          provideClusterInfo = true
          installHint        = "gcloud components install gke-gcloud-auth-plugin"
        }
      }
    }]
    contexts = [{
      name    = "gke_${var.project_id}_${var.region}_${var.name}"
      context = { cluster = "gke_${var.project_id}_${var.region}_${var.name}", user = "gke_${var.project_id}_${var.region}_${var.name}" }
    }]
  })
}

output "kube_context" {
  description = "Context name used by kubeconfig and by `gcloud container clusters get-credentials`."
  value       = "gke_${var.project_id}_${var.region}_${var.name}"
}

output "get_credentials_command" {
  description = "The gcloud command that writes this cluster's credentials into a kubeconfig."
  value       = "gcloud container clusters get-credentials ${var.name} --region ${var.region} --project ${var.project_id}"
}

output "workload_pool" {
  description = "Workload identity pool of the cluster."
  value       = local.workload_pool
}

output "node_service_account" {
  description = "Email of the nodes' service account."
  value       = google_service_account.nodes.email
}

output "service_accounts" {
  description = "Google service accounts of the workloads (serving, mlflow, pipelines), for the chart's values."
  value       = { for k, sa in google_service_account.workloads : k => sa.email }
}

output "pool_labels" {
  description = "Labels of each pool's nodes (node selectors for the chart)."
  value       = local.pool_labels
}

output "node_pools" {
  description = "Every pool's role, machine type, autoscaling bounds and spot flag."
  value = {
    for name, p in var.node_pools : name => {
      role         = p.role
      machine_type = p.machine_type
      min_nodes    = p.min_nodes
      max_nodes    = p.max_nodes
      spot         = p.spot
    }
  }
}

output "gpu_pools" {
  description = "GPU pools: accelerator type and count, spot, autoscaling bounds."
  value = {
    for name, p in var.node_pools : name => {
      accelerator = p.accelerator.type
      count       = p.accelerator.count
      spot        = p.spot
      min_nodes   = p.min_nodes
      max_nodes   = p.max_nodes
    } if p.role == "gpu"
  }
}

output "bucket" {
  description = "Name of the versioned artifacts bucket."
  value       = google_storage_bucket.artifacts.name
}

output "model_repository_uri" {
  description = "Triton model repository (gs:// prefix)."
  value       = "gs://${google_storage_bucket.artifacts.name}/models"
}

output "mlflow_artifacts_uri" {
  description = "MLflow artifact destination (gs:// prefix)."
  value       = "gs://${google_storage_bucket.artifacts.name}/mlflow"
}

output "cloud_sql" {
  description = "MLflow's Cloud SQL instance: connection name, private IP, database, user (null when disabled)."
  value = var.cloud_sql.enabled ? {
    connection_name = google_sql_database_instance.mlflow[0].connection_name
    private_ip      = google_sql_database_instance.mlflow[0].private_ip_address
    database        = google_sql_database.mlflow[0].name
    user            = google_sql_user.mlflow[0].name
  } : null
}

output "network" {
  description = "VPC network and subnetwork self links."
  value = {
    network    = google_compute_network.this.self_link
    subnetwork = google_compute_subnetwork.nodes.self_link
  }
}
