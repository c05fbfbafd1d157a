variable "project_id" {
  description = "Google Cloud project (make up CLUSTER=gke PROJECT=…)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project ID."
  }
}

variable "region" {
  description = "Region of the cluster (make up CLUSTER=gke REGION=…), e.g. us-central1."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a region such as us-central1 (not a zone)."
  }
}

variable "zones" {
  description = "Zones of the nodes; empty = GKE's default zones of the region."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for z in var.zones : startswith(z, "${var.region}-")])
    error_message = "zones must be zones of region."
  }
}

variable "name" {
  description = "Cluster name and resource prefix."
  type        = string
  default     = "shipyard"

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{2,19}[a-z0-9]$", var.name))
    error_message = "name must be 4-21 lowercase letters, digits or '-'."
  }
}

variable "master_authorized_networks" {
  description = "CIDRs allowed to reach the control plane: at least the address `tofu apply` runs from (AUTHORIZED_CIDR=a.b.c.d/32 for scripts/infra.sh)."
  type = list(object({
    cidr_block   = string
    display_name = string
  }))

  validation {
    condition     = length(var.master_authorized_networks) > 0
    error_message = "master_authorized_networks needs at least your own address (a.b.c.d/32), or the apply cannot reach the cluster."
  }
}

variable "node_pools" {
  description = "Node pools (see modules/gke); null = system e2-standard-4, cpu-serving n2-standard-4, gpu-l4 g2-standard-8 + 1 L4 on Spot scaling from zero."
  type        = any
  default     = null

  validation {
    condition     = var.node_pools == null || can(keys(var.node_pools))
    error_message = "node_pools must be null or a map of pools."
  }
}

variable "gpu_serving" {
  description = "Triton on the GPU pool: enabled, replicas (one GPU each). Off: serving runs on the CPU pool (and the in-process fallback)."
  type = object({
    enabled  = optional(bool, true)
    replicas = optional(number, 1)
  })
  default = {}

  validation {
    condition     = var.gpu_serving.replicas >= 1 && var.gpu_serving.replicas <= 32
    error_message = "gpu_serving.replicas must be 1-32."
  }
}

variable "models" {
  description = "Stable and canary versions per model (see modules/platform)."
  type        = any
  default     = { fraud-scoring = { stable_version = "1" } }

  validation {
    condition     = can(keys(var.models)) && length(var.models) > 0
    error_message = "models must be a map naming at least one model."
  }
}

variable "image" {
  description = "Shipyard image; pin a digest in production."
  type = object({
    repository = optional(string, "ghcr.io/shipyard-mlops/shipyard")
    tag        = optional(string, "")
    digest     = optional(string, "")
  })
  default = {}

  validation {
    condition     = length(var.image.repository) > 0
    error_message = "image.repository must not be empty."
  }
}

variable "cloud_sql" {
  description = "Cloud SQL for MLflow (see modules/gke); enabled = false runs PostgreSQL in the cluster."
  type        = any
  default     = {}

  validation {
    condition     = can(keys(var.cloud_sql))
    error_message = "cloud_sql must be an object."
  }
}

variable "deletion_protection" {
  description = "Protect the cluster and database from destroy; false for throwaway environments (make down CLUSTER=gke)."
  type        = bool
  default     = true
}

variable "cost_model" {
  description = "Prices for the chart's cost rules and the hourly_cost_estimate output: USD per GPU-hour and CPU-core-hour, spot discount (applied when the GPU pool is Spot), daily budget per model, allowed daily growth."
  type = object({
    gpu_hour         = optional(number, 0.35)
    cpu_core_hour    = optional(number, 0.0316)
    spot_discount    = optional(number, 0.6)
    daily_budget     = optional(number, 50)
    max_daily_growth = optional(number, 0.5)
  })
  default = {}

  validation {
    condition     = var.cost_model.spot_discount >= 0 && var.cost_model.spot_discount < 1
    error_message = "cost_model.spot_discount must be in [0, 1)."
  }
}

variable "kubeconfig_path" {
  description = "Kubeconfig holding the cluster's credentials; \"\" = .kube/<name>.yaml here (scripts/infra.sh writes it with gcloud)."
  type        = string
  default     = ""

  validation {
    condition     = var.kubeconfig_path == "" || can(regex("\\.ya?ml$", var.kubeconfig_path))
    error_message = "kubeconfig_path must be empty or a .yaml file."
  }
}

variable "mlflow_db_password" {
  description = "Password of MLflow's database user (Cloud SQL or in-cluster). scripts/infra.sh generates it into secrets.auto.tfvars."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.mlflow_db_password) >= 16
    error_message = "mlflow_db_password must be at least 16 characters."
  }
}

variable "redis_password" {
  description = "Password of the in-cluster Redis (Feast). scripts/infra.sh generates it into secrets.auto.tfvars."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.redis_password) >= 16
    error_message = "redis_password must be at least 16 characters."
  }
}
