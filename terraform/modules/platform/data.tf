# Redis (Feast's online store) and PostgreSQL (MLflow's backend store) where not managed, and
# the Secrets the chart names instead of holding credentials in values.

resource "kubernetes_secret_v1" "redis" {
  metadata {
    name      = "shipyard-redis"
    namespace = kubernetes_namespace_v1.shipyard.metadata[0].name
  }
  data = { redis-password = var.redis_password }
}

resource "kubernetes_secret_v1" "postgresql" {
  count = var.postgres.managed ? 0 : 1

  metadata {
    name      = "shipyard-postgresql"
    namespace = kubernetes_namespace_v1.shipyard.metadata[0].name
  }
  data = {
    password          = var.postgres_password
    postgres-password = var.postgres_password
  }
}

resource "kubernetes_secret_v1" "mlflow" {
  metadata {
    name      = "shipyard-mlflow"
    namespace = kubernetes_namespace_v1.shipyard.metadata[0].name
  }
  data = {
    backend-store-uri = format("postgresql://%s:%s@%s:%d/%s?sslmode=%s",
      var.postgres.user, var.postgres_password, local.postgres_host, var.postgres.port,
    var.postgres.database, local.postgres_sslmode)
  }
}

resource "helm_release" "redis" {
  count = local.redis_in_cluster ? 1 : 0

  name       = "redis"
  namespace  = kubernetes_namespace_v1.shipyard.metadata[0].name
  repository = "oci://registry-1.docker.io/bitnamicharts"
  chart      = "redis"
  version    = var.versions.redis
  wait       = true
  timeout    = 600
  values = [yamlencode({
    architecture = "standalone"
    auth = {
      enabled                   = true
      existingSecret            = kubernetes_secret_v1.redis.metadata[0].name
      existingSecretPasswordKey = "redis-password"
    }
    master = {
      persistence = { size = local.kind ? "1Gi" : "8Gi" }
      resources = local.kind ? {
        requests = { cpu = "50m", memory = "128Mi" }
        limits   = { cpu = "500m", memory = "256Mi" }
        } : {
        requests = { cpu = "250m", memory = "1Gi" }
        limits   = { cpu = "1", memory = "2Gi" }
      }
    }
    metrics = { enabled = var.install.kube_prometheus_stack, serviceMonitor = { enabled = var.install.kube_prometheus_stack } }
  })]

  depends_on = [helm_release.kube_prometheus_stack]
}

resource "helm_release" "postgresql" {
  count = var.postgres.managed ? 0 : 1

  name       = "postgresql"
  namespace  = kubernetes_namespace_v1.shipyard.metadata[0].name
  repository = "oci://registry-1.docker.io/bitnamicharts"
  chart      = "postgresql"
  version    = var.versions.postgresql
  wait       = true
  timeout    = 600
  values = [yamlencode({
    auth = {
      username       = var.postgres.user
      database       = var.postgres.database
      existingSecret = kubernetes_secret_v1.postgresql[0].metadata[0].name
      secretKeys     = { adminPasswordKey = "postgres-password", userPasswordKey = "password" }
    }
    primary = {
      persistence = { size = local.kind ? "1Gi" : "20Gi" }
      resources = local.kind ? {
        requests = { cpu = "100m", memory = "256Mi" }
        limits   = { cpu = "1", memory = "512Mi" }
        } : {
        requests = { cpu = "500m", memory = "1Gi" }
        limits   = { cpu = "2", memory = "2Gi" }
      }
    }
  })]
}

# The model repository on a volume (kind): the training pipeline's export step writes it.
resource "kubernetes_persistent_volume_claim_v1" "models" {
  count = var.model_repository.source == "volume" ? 1 : 0

  metadata {
    name      = var.model_repository.claim_name
    namespace = kubernetes_namespace_v1.shipyard.metadata[0].name
  }
  spec {
    access_modes       = ["ReadWriteOnce"]
    storage_class_name = local.kind ? "standard" : null
    resources {
      requests = { storage = var.model_repository.size }
    }
  }
  wait_until_bound = false # kind's local-path class binds on first use
}
