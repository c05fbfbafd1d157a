# -- Where things go -------------------------------------------------------------------------

variable "cluster_kind" {
  description = "kind (small profile, in-cluster PostgreSQL, model repository on a volume) or gke."
  type        = string

  validation {
    condition     = contains(["kind", "gke"], var.cluster_kind)
    error_message = "cluster_kind must be kind or gke."
  }
}

variable "kubeconfig_path" {
  description = "Kubeconfig used by kubectl for the KFP manifests (the providers are configured by the environment)."
  type        = string

  validation {
    condition     = length(var.kubeconfig_path) > 0
    error_message = "kubeconfig_path must not be empty."
  }
}

variable "kube_context" {
  description = "Context inside kubeconfig_path."
  type        = string

  validation {
    condition     = length(var.kube_context) > 0
    error_message = "kube_context must not be empty."
  }
}

variable "namespace" {
  description = "Namespace of the Shipyard release, Redis and the in-cluster PostgreSQL."
  type        = string
  default     = "shipyard"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.namespace))
    error_message = "namespace must be a DNS label."
  }
}

variable "monitoring_namespace" {
  description = "Namespace of kube-prometheus-stack (the chart's network policy admits scrapes from it)."
  type        = string
  default     = "monitoring"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.monitoring_namespace))
    error_message = "monitoring_namespace must be a DNS label."
  }
}

variable "chart_path" {
  description = "Path of the Shipyard chart; \"\" = helm/shipyard of this repository."
  type        = string
  default     = ""

  validation {
    condition     = var.chart_path == "" || can(regex("shipyard/?$", var.chart_path))
    error_message = "chart_path must be empty or point at a folder named shipyard."
  }
}

# -- Prerequisite releases (pinned; bump here) ----------------------------------------------

variable "versions" {
  description = "Pinned versions: kube-prometheus-stack, Bitnami redis and postgresql charts, KFP manifests (a kubeflow/pipelines release tag)."
  type = object({
    kube_prometheus_stack = optional(string, "82.6.0")
    redis                 = optional(string, "22.0.7")
    postgresql            = optional(string, "16.7.27")
    kfp                   = optional(string, "2.14.3")
  })
  default = {}

  validation {
    condition     = alltrue([for v in values(var.versions) : can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", v))])
    error_message = "versions must be exact x.y.z versions (no ranges, no latest)."
  }
}

variable "install" {
  description = "Which prerequisite releases to install: kube-prometheus-stack, KFP (PostgreSQL follows postgres.managed, Redis follows redis.host)."
  type = object({
    kube_prometheus_stack = optional(bool, true)
    kfp                   = optional(bool, true)
  })
  default = {}
}

# -- Data services ----------------------------------------------------------------------------

variable "postgres" {
  description = "MLflow's backend store. managed = false installs PostgreSQL in the cluster; true uses host (Cloud SQL) with sslmode."
  type = object({
    managed  = bool
    host     = optional(string, "")
    port     = optional(number, 5432)
    database = optional(string, "mlflow")
    user     = optional(string, "mlflow")
    sslmode  = optional(string, "require")
  })
  default = { managed = false }

  validation {
    condition     = !var.postgres.managed || length(var.postgres.host) > 0
    error_message = "postgres.host is required when postgres.managed = true."
  }
  validation {
    condition     = contains(["disable", "require", "verify-ca", "verify-full"], var.postgres.sslmode)
    error_message = "postgres.sslmode must be disable, require, verify-ca or verify-full."
  }
  validation {
    condition     = can(regex("^[a-z_][a-z0-9_]{0,62}$", var.postgres.database)) && can(regex("^[a-z_][a-z0-9_]{0,62}$", var.postgres.user))
    error_message = "postgres.database and postgres.user must be lowercase SQL identifiers."
  }
}

variable "postgres_password" {
  description = "Password of the MLflow database user (and of the in-cluster PostgreSQL's admin). scripts/infra.sh generates one into secrets.auto.tfvars."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.postgres_password) >= 16 && can(regex("^[A-Za-z0-9_-]+$", var.postgres_password))
    error_message = "postgres_password must be at least 16 characters of A-Z a-z 0-9 _ - (it goes into a URI unescaped)."
  }
}

variable "redis" {
  description = "Feast's online store. host = \"\" installs Redis in the cluster (redis-master); otherwise Memorystore's host and port."
  type = object({
    host = optional(string, "")
    port = optional(number, 6379)
  })
  default = {}

  validation {
    condition     = var.redis.port > 0 && var.redis.port < 65536
    error_message = "redis.port must be a TCP port."
  }
}

variable "redis_password" {
  description = "Redis AUTH password (the in-cluster Redis is created with it). scripts/infra.sh generates one into secrets.auto.tfvars."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.redis_password) >= 16
    error_message = "redis_password must be at least 16 characters."
  }
}

# -- The Shipyard release ---------------------------------------------------------------------

variable "image" {
  description = "Shipyard image: repository, tag (\"\" = the chart's appVersion), digest (sha256:…, wins over the tag)."
  type = object({
    repository = optional(string, "ghcr.io/shipyard-mlops/shipyard")
    tag        = optional(string, "")
    digest     = optional(string, "")
  })
  default = {}

  validation {
    condition     = can(regex("^(sha256:[a-f0-9]{64})?$", var.image.digest))
    error_message = "image.digest must be empty or sha256:<64 hex>."
  }
}

variable "gpu_pool" {
  description = "The Triton GPU deployment: on/off, replicas, GPUs per replica, node selector of the GPU node pool."
  type = object({
    enabled          = bool
    replicas         = optional(number, 1)
    gpus_per_replica = optional(number, 1)
    node_selector    = optional(map(string), {})
  })
  default = { enabled = false }

  validation {
    condition     = !(var.gpu_pool.enabled && var.cluster_kind == "kind")
    error_message = "gpu_pool.enabled must be false on kind: its nodes have no GPUs."
  }
  validation {
    condition     = var.gpu_pool.replicas >= 1 && var.gpu_pool.gpus_per_replica >= 1 && var.gpu_pool.gpus_per_replica <= 8
    error_message = "gpu_pool needs replicas >= 1 and 1-8 gpus_per_replica."
  }
}

variable "cpu_pool" {
  description = "The Triton CPU deployment (fallback pool): replicas and node selector."
  type = object({
    replicas      = optional(number, 2)
    node_selector = optional(map(string), {})
  })
  default = {}

  validation {
    condition     = var.cpu_pool.replicas >= 1 && var.cpu_pool.replicas <= 50
    error_message = "cpu_pool.replicas must be 1-50."
  }
}

variable "gateway" {
  description = "Gateway: replicas (the autoscaler's minimum on GKE), node selector, Secret with API keys (\"\" = none)."
  type = object({
    replicas        = optional(number, 2)
    node_selector   = optional(map(string), {})
    api_keys_secret = optional(string, "")
  })
  default = {}

  validation {
    condition     = var.gateway.replicas >= 1 && var.gateway.replicas <= 100
    error_message = "gateway.replicas must be 1-100."
  }
}

variable "models" {
  description = "Canary settings per model: stable version and optional canary {version, weight (percent), analysis thresholds}. A canary turns the rollout analysis on."
  type = map(object({
    stable_version = string
    canary = optional(object({
      version = string
      weight  = optional(number, 0)
      analysis = optional(object({
        steps            = optional(list(number))
        interval_s       = optional(number)
        max_failures     = optional(number)
        max_error_ratio  = optional(number)
        max_p99_ratio    = optional(number)
        p99_tolerance_ms = optional(number)
        max_score_psi    = optional(number)
        max_auc_drop     = optional(number)
        min_requests     = optional(number)
      }))
    }))
  }))
  default = { fraud-scoring = { stable_version = "1" } }

  validation {
    condition     = alltrue([for name, _ in var.models : can(regex("^[a-z0-9][a-z0-9_-]{0,62}$", name))])
    error_message = "models keys must be model names: lowercase letters, digits, '_' or '-'."
  }
  validation {
    condition = alltrue(flatten([for m in var.models : concat(
      [can(regex("^[1-9][0-9]{0,8}$", m.stable_version))],
      m.canary == null ? [] : [can(regex("^[1-9][0-9]{0,8}$", m.canary.version))],
    )]))
    error_message = "model versions must be positive integers (MLflow registry versions), as strings."
  }
  validation {
    condition     = alltrue([for m in var.models : m.canary == null || try(m.canary.version != m.stable_version && m.canary.weight >= 0 && m.canary.weight <= 100, false)])
    error_message = "a canary needs a version other than stable and a weight between 0 and 100."
  }
  validation {
    condition = alltrue([for m in var.models : try(m.canary.analysis, null) == null || try(
      alltrue([for s in coalesce(m.canary.analysis.steps, [1]) : s > 0 && s <= 100]) &&
      coalesce(m.canary.analysis.max_error_ratio, 0) <= 1 && coalesce(m.canary.analysis.max_error_ratio, 0) >= 0 &&
      coalesce(m.canary.analysis.min_requests, 1) >= 1 && coalesce(m.canary.analysis.interval_s, 1) > 0,
    false)])
    error_message = "canary analysis: steps in (0, 100], max_error_ratio in [0, 1], min_requests >= 1, interval_s > 0."
  }
}

variable "model_repository" {
  description = "Triton model repository: gcs (bucket, prefix, Google service account with read access) or volume (a claim this module creates)."
  type = object({
    source          = string
    gcs_bucket      = optional(string, "")
    gcs_prefix      = optional(string, "models")
    service_account = optional(string, "")
    claim_name      = optional(string, "shipyard-models")
    size            = optional(string, "5Gi")
  })
  default = { source = "volume" }

  validation {
    condition     = contains(["gcs", "volume"], var.model_repository.source)
    error_message = "model_repository.source must be gcs or volume."
  }
  validation {
    condition     = var.model_repository.source != "gcs" || length(var.model_repository.gcs_bucket) > 0
    error_message = "model_repository.gcs_bucket is required when source = gcs."
  }
}

variable "mlflow" {
  description = "MLflow: artifact destination (gs://…; \"\" = inside the pod, kind demos only) and Google service account (workload identity)."
  type = object({
    artifacts_destination = optional(string, "")
    service_account       = optional(string, "")
  })
  default = {}

  validation {
    condition     = var.mlflow.artifacts_destination == "" || can(regex("^(gs|s3)://[a-z0-9][a-z0-9._-]+(/.*)?$", var.mlflow.artifacts_destination))
    error_message = "mlflow.artifacts_destination must be empty or gs://bucket[/prefix]."
  }
}

variable "cost_model" {
  description = <<-EOT
    Cost model, passed to the chart's `cost` values (the cost rules turn busy time into spend):
    USD per GPU-hour (one GPU of the GPU pool) and per CPU-core-hour, the spot discount on the GPU
    pool (0-1), the daily budget per model (ShipyardCostOverBudget) and the allowed day-over-day
    growth of cost per 1k predictions (ShipyardCostGrowth). Also prices the hourly_cost_estimate
    output.
  EOT
  type = object({
    gpu_hour         = optional(number, 0.35)
    cpu_core_hour    = optional(number, 0.0316)
    spot_discount    = optional(number, 0)
    daily_budget     = optional(number, 50)
    max_daily_growth = optional(number, 0.5)
  })
  default = {}

  validation {
    condition     = var.cost_model.gpu_hour >= 0 && var.cost_model.cpu_core_hour >= 0
    error_message = "cost_model prices must not be negative."
  }
  validation {
    condition     = var.cost_model.spot_discount >= 0 && var.cost_model.spot_discount < 1
    error_message = "cost_model.spot_discount must be in [0, 1)."
  }
  validation {
    condition     = var.cost_model.daily_budget > 0 && var.cost_model.max_daily_growth > 0
    error_message = "cost_model.daily_budget and max_daily_growth must be positive."
  }
}

variable "capacity" {
  description = "What the hourly_cost_estimate output prices: GPUs of the GPU pool and CPU cores of the CPU nodes running."
  type = object({
    gpus      = optional(number, 0)
    cpu_cores = optional(number, 0)
  })
  default = {}

  validation {
    condition     = var.capacity.gpus >= 0 && var.capacity.cpu_cores >= 0
    error_message = "capacity must not be negative."
  }
}
