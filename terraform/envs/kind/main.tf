# Shipyard on a local kind cluster: CPU only (the chart's fallback path), data services in the
# cluster, the model repository on a volume. `make up CLUSTER=kind` applies this.

module "cluster" {
  source = "../../modules/kind"

  cluster_name = var.cluster_name
  node_image   = var.node_image
  node_pools   = var.node_pools
}

module "platform" {
  source = "../../modules/platform"

  cluster_kind    = "kind"
  kubeconfig_path = module.cluster.kubeconfig_path
  kube_context    = module.cluster.kube_context

  install           = var.install
  postgres          = { managed = false }
  postgres_password = var.postgres_password
  redis_password    = var.redis_password

  image            = var.image
  models           = var.models
  gpu_pool         = { enabled = false }
  cpu_pool         = { replicas = 1, node_selector = { "shipyard.io/role" = "cpu-serving" } }
  gateway          = { replicas = 1, node_selector = { "shipyard.io/role" = "cpu-serving" } }
  model_repository = { source = "volume", size = "2Gi" }
}
