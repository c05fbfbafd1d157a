locals {
  small = var.size == "small"

  # Resources of the small profile (kind on a laptop); standard keeps the chart's defaults.
  small_resources = {
    gateway = { requests = { cpu = "100m", memory = "512Mi" }, limits = { cpu = "1", memory = "1Gi" } }
    triton  = { requests = { cpu = "250m", memory = "512Mi" }, limits = { cpu = "1", memory = "1Gi" } }
    mlflow  = { requests = { cpu = "100m", memory = "512Mi" }, limits = { cpu = "1", memory = "1Gi" } }
    feast   = { requests = { cpu = "100m", memory = "256Mi" }, limits = { cpu = "500m", memory = "512Mi" } }
  }

  models = {
    for name, m in var.models : name => merge(
      { stable = { version = m.stable_version } },
      m.canary == null ? null : {
        canary = merge(
          { version = m.canary.version, weight = m.canary.weight },
          m.canary.analysis == null ? null : {
            analysis = { for k, v in m.canary.analysis : k => v if v != null }
          },
        )
      },
    )
  }
  canary_in_progress = anytrue([for m in var.models : m.canary != null])

  egress_rules = merge(
    length(var.egress.postgres_cidrs) == 0 ? null : {
      postgres = [{
        to    = [for c in var.egress.postgres_cidrs : { ipBlock = { cidr = c } }]
        ports = [{ port = 5432, protocol = "TCP" }]
      }]
    },
    length(var.egress.redis_cidrs) == 0 ? null : {
      redis = [{
        to    = [for c in var.egress.redis_cidrs : { ipBlock = { cidr = c } }]
        ports = [{ port = var.redis.port, protocol = "TCP" }]
      }]
    },
  )

  image = merge(
    { repository = var.image.repository },
    var.image.tag == "" ? null : { tag = var.image.tag },
    var.image.digest == "" ? null : { digest = var.image.digest },
  )

  values = {
    image  = local.image
    models = local.models
    modelRepository = merge(
      { source = var.model_repository.source },
      var.model_repository.source != "gcs" ? null : {
        gcs = {
          bucket         = var.model_repository.gcs_bucket
          prefix         = var.model_repository.gcs_prefix
          serviceAccount = var.model_repository.service_account
        }
      },
      var.model_repository.source != "volume" ? null : {
        volume = { claimName = var.model_repository.claim_name }
      },
    )
    gateway = merge(
      {
        replicas       = local.small ? 1 : var.gateway.replicas
        existingSecret = var.gateway.api_keys_secret
        nodeSelector   = var.gateway.node_selector
        autoscaling = merge({ enabled = !local.small }, local.small ? null : {
          minReplicas = var.gateway.replicas
          maxReplicas = max(10, var.gateway.replicas)
        })
      },
      local.small ? { workers = 1, resources = local.small_resources.gateway } : null,
    )
    triton = {
      gpu = {
        enabled      = var.gpu_pool.enabled
        replicas     = var.gpu_pool.replicas
        count        = var.gpu_pool.gpus_per_replica
        nodeSelector = var.gpu_pool.node_selector
      }
      cpu = merge(
        {
          enabled      = true
          replicas     = local.small ? 1 : var.cpu_pool.replicas
          nodeSelector = var.cpu_pool.node_selector
        },
        local.small ? { resources = local.small_resources.triton } : null,
      )
    }
    mlflow = merge(
      {
        existingSecret       = var.mlflow.secret_name
        artifactsDestination = var.mlflow.artifacts_destination
        serviceAccount       = var.mlflow.service_account
      },
      local.small ? { resources = local.small_resources.mlflow } : null,
    )
    featureStore = {
      redis = {
        host           = var.redis.host
        port           = var.redis.port
        existingSecret = var.redis.secret_name
      }
      storage = merge(
        {
          existingClaim = var.feature_storage.existing_claim
          size          = var.feature_storage.size
          accessMode    = var.feature_storage.access_mode
        },
        var.feature_storage.storage_class == "" ? null : { storageClassName = var.feature_storage.storage_class },
      )
      server = merge({ enabled = true }, local.small ? { resources = local.small_resources.feast } : null)
    }
    rollout = {
      prometheusUrl = var.monitoring.prometheus_url
      analysis      = { enabled = local.canary_in_progress }
      retrain       = merge({ enabled = var.kfp_host != "" }, var.kfp_host == "" ? null : { kfpHost = var.kfp_host })
    }
    cost = {
      gpuHour        = var.cost.gpu_hour
      cpuCoreHour    = var.cost.cpu_core_hour
      spotDiscount   = var.cost.spot_discount
      dailyBudget    = var.cost.daily_budget
      maxDailyGrowth = var.cost.max_daily_growth
    }
    monitoring = {
      enabled = var.monitoring.enabled
      labels  = merge({}, var.monitoring.release_label == "" ? null : { release = var.monitoring.release_label })
    }
    networkPolicy = merge({ enabled = true }, length(local.egress_rules) == 0 ? null : { egress = local.egress_rules })
  }
}
