locals {
  chart_path = var.chart_path != "" ? var.chart_path : "${path.module}/../../../helm/shipyard"
  release    = "shipyard"
  kind       = var.cluster_kind == "kind"

  redis_in_cluster = var.redis.host == ""
  redis_host       = local.redis_in_cluster ? "redis-master" : var.redis.host
  postgres_host    = var.postgres.managed ? var.postgres.host : "postgresql.${var.namespace}.svc.cluster.local"
  postgres_sslmode = var.postgres.managed ? var.postgres.sslmode : "disable"

  prometheus_url = "http://prometheus-operated.${var.monitoring_namespace}.svc:9090"
  kfp_host       = var.install.kfp ? "http://ml-pipeline.kubeflow.svc:8888" : ""

  # Managed services outside the cluster: narrow the release's egress to their addresses.
  ip_pattern     = "^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$"
  postgres_cidrs = var.postgres.managed && can(regex(local.ip_pattern, var.postgres.host)) ? ["${var.postgres.host}/32"] : []
  redis_cidrs    = !local.redis_in_cluster && can(regex(local.ip_pattern, var.redis.host)) ? ["${var.redis.host}/32"] : []

  hourly_cost = (var.capacity.gpus * var.cost_model.gpu_hour * (1 - var.cost_model.spot_discount)
  + var.capacity.cpu_cores * var.cost_model.cpu_core_hour)
}

module "chart_values" {
  source = "./values"

  size     = local.kind ? "small" : "standard"
  image    = var.image
  models   = var.models
  gateway  = var.gateway
  gpu_pool = var.gpu_pool
  cpu_pool = var.cpu_pool
  model_repository = {
    source          = var.model_repository.source
    gcs_bucket      = var.model_repository.gcs_bucket
    gcs_prefix      = var.model_repository.gcs_prefix
    service_account = var.model_repository.service_account
    claim_name      = var.model_repository.claim_name
  }
  mlflow = {
    secret_name           = kubernetes_secret_v1.mlflow.metadata[0].name
    artifacts_destination = var.mlflow.artifacts_destination
    service_account       = var.mlflow.service_account
  }
  redis = {
    host        = local.redis_host
    port        = var.redis.port
    secret_name = kubernetes_secret_v1.redis.metadata[0].name
  }
  feature_storage = {
    size          = local.kind ? "1Gi" : "5Gi"
    storage_class = local.kind ? "standard" : ""
  }
  monitoring = {
    enabled        = var.install.kube_prometheus_stack
    prometheus_url = local.prometheus_url
  }
  cost     = var.cost_model
  kfp_host = local.kfp_host
  egress = {
    postgres_cidrs = local.postgres_cidrs
    redis_cidrs    = local.redis_cidrs
  }
}
