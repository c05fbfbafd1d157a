# The platform module validates these (they are its own variables, passed through); the checks
# here guard the module when it is used on its own.

variable "size" {
  description = "Resource profile: small (kind, one replica of everything) or standard (the chart's defaults)."
  type        = string
  default     = "standard"

  validation {
    condition     = contains(["small", "standard"], var.size)
    error_message = "size must be small or standard."
  }
}

variable "image" {
  description = "Shipyard image: repository, tag (\"\" = the chart's appVersion) and digest (wins over the tag)."
  type = object({
    repository = optional(string, "ghcr.io/shipyard-mlops/shipyard")
    tag        = optional(string, "")
    digest     = optional(string, "")
  })
  default = {}
}

variable "models" {
  description = "Routing per model: stable version and an optional canary (version, weight in percent, analysis thresholds)."
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
}

variable "gpu_pool" {
  description = "Triton GPU deployment: on/off, replicas, GPUs per replica, node selector of the GPU pool."
  type = object({
    enabled          = bool
    replicas         = optional(number, 1)
    gpus_per_replica = optional(number, 1)
    node_selector    = optional(map(string), {})
  })
  default = { enabled = false }
}

variable "cpu_pool" {
  description = "Triton CPU deployment (the fallback pool): replicas and node selector."
  type = object({
    replicas      = optional(number, 2)
    node_selector = optional(map(string), {})
  })
  default = {}
}

variable "gateway" {
  description = "Gateway: replicas (autoscaling minimum on standard), node selector, Secret holding API keys (\"\" = none)."
  type = object({
    replicas        = optional(number, 2)
    node_selector   = optional(map(string), {})
    api_keys_secret = optional(string, "")
  })
  default = {}
}

variable "model_repository" {
  description = "Triton model repository: source gcs (bucket, prefix, Google service account) or volume (claim name)."
  type = object({
    source          = string
    gcs_bucket      = optional(string, "")
    gcs_prefix      = optional(string, "models")
    service_account = optional(string, "")
    claim_name      = optional(string, "shipyard-models")
  })
  default = { source = "volume" }
}

variable "mlflow" {
  description = "MLflow: Secret with backend-store-uri, artifact destination (\"\" = inside the pod), Google service account."
  type = object({
    secret_name           = optional(string, "shipyard-mlflow")
    artifacts_destination = optional(string, "")
    service_account       = optional(string, "")
  })
  default = {}
}

variable "redis" {
  description = "Feast online store: Redis host, port and the Secret with key redis-password (\"\" = no AUTH)."
  type = object({
    host        = optional(string, "redis-master")
    port        = optional(number, 6379)
    secret_name = optional(string, "")
  })
  default = {}
}

variable "feature_storage" {
  description = "Feast registry and offline tables: existing claim, or size/storage class/access mode of a new one."
  type = object({
    existing_claim = optional(string, "")
    size           = optional(string, "5Gi")
    storage_class  = optional(string, "")
    access_mode    = optional(string, "ReadWriteOnce")
  })
  default = {}
}

variable "monitoring" {
  description = "ServiceMonitors/PrometheusRules/dashboards on or off, the label kube-prometheus-stack selects, Prometheus URL."
  type = object({
    enabled        = bool
    release_label  = optional(string, "")
    prometheus_url = optional(string, "http://prometheus-operated.monitoring.svc:9090")
  })
  default = { enabled = false }
}

variable "cost" {
  description = "Cost model the chart renders as series for the cost rules: USD per GPU-hour and per CPU-core-hour, spot discount on the GPU pool, daily budget per model, allowed day-over-day growth."
  type = object({
    gpu_hour         = optional(number, 0.35)
    cpu_core_hour    = optional(number, 0.0316)
    spot_discount    = optional(number, 0)
    daily_budget     = optional(number, 50)
    max_daily_growth = optional(number, 0.5)
  })
  default = {}
}

variable "kfp_host" {
  description = "KFP API the rollout analysis submits retraining runs to; \"\" disables retraining."
  type        = string
  default     = ""
}

variable "egress" {
  description = "Where the release's pods may connect: CIDRs of PostgreSQL and Redis when they are outside the cluster (empty = any)."
  type = object({
    postgres_cidrs = optional(list(string), [])
    redis_cidrs    = optional(list(string), [])
  })
  default = {}
}
