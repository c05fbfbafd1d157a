# Shipyard on GKE: a private regional cluster with system, CPU serving and GPU pools, the
# versioned artifacts bucket, Cloud SQL for MLflow, then the platform releases.
# `make up CLUSTER=gke PROJECT=… REGION=…` applies this.

locals {
  kubeconfig_path = var.kubeconfig_path != "" ? var.kubeconfig_path : abspath("${path.root}/.kube/${var.name}.yaml")
  gpu_pools       = module.gke.gpu_pools
  has_gpu_pool    = length(local.gpu_pools) > 0
  gpu_spot        = anytrue([for p in values(local.gpu_pools) : p.spot])
  cloud_sql       = module.gke.cloud_sql
}

module "gke" {
  source = "../../modules/gke"

  project_id                 = var.project_id
  region                     = var.region
  zones                      = var.zones
  name                       = var.name
  master_authorized_networks = var.master_authorized_networks
  node_pools                 = var.node_pools
  cloud_sql                  = var.cloud_sql
  mlflow_db_password         = var.mlflow_db_password
  deletion_protection        = var.deletion_protection
  artifacts_bucket           = { force_destroy = !var.deletion_protection }
}

module "platform" {
  source = "../../modules/platform"

  cluster_kind    = "gke"
  kubeconfig_path = local.kubeconfig_path
  kube_context    = module.gke.kube_context

  postgres = {
    managed = local.cloud_sql != null
    host    = local.cloud_sql == null ? "" : local.cloud_sql.private_ip
  }
  postgres_password = var.mlflow_db_password
  redis_password    = var.redis_password

  image  = var.image
  models = var.models
  gpu_pool = {
    enabled       = var.gpu_serving.enabled && local.has_gpu_pool
    replicas      = var.gpu_serving.replicas
    node_selector = { "shipyard.io/role" = "gpu" }
  }
  cpu_pool = { replicas = 2, node_selector = { "shipyard.io/role" = "cpu-serving" } }
  gateway  = { replicas = 2, node_selector = { "shipyard.io/role" = "cpu-serving" } }
  model_repository = {
    source          = "gcs"
    gcs_bucket      = module.gke.bucket
    gcs_prefix      = "models"
    service_account = module.gke.service_accounts["serving"]
  }
  mlflow = {
    artifacts_destination = module.gke.mlflow_artifacts_uri
    service_account       = module.gke.service_accounts["mlflow"]
  }

  # The spot discount applies only when the GPU pool runs on Spot VMs.
  cost_model = merge(var.cost_model, { spot_discount = local.gpu_spot ? var.cost_model.spot_discount : 0 })
  capacity = {
    gpus = var.gpu_serving.enabled && local.has_gpu_pool ? var.gpu_serving.replicas : 0
    # CPU cores of the CPU pools at their minimum (n2-standard-4 has 4).
    cpu_cores = sum([for p in values(module.gke.node_pools) : try(tonumber(regex("[0-9]+$", p.machine_type)), 2) * p.min_nodes if p.role != "gpu"])
  }
}
