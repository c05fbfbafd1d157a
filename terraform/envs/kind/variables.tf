variable "cluster_name" {
  description = "Name of the kind cluster (kubectl context kind-<name>)."
  type        = string
  default     = "shipyard"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$", var.cluster_name))
    error_message = "cluster_name must be 1-32 lowercase letters, digits or '-'."
  }
}

variable "node_image" {
  description = "kindest/node image (its tag is the Kubernetes version)."
  type        = string
  default     = "kindest/node:v1.33.1"

  validation {
    condition     = startswith(var.node_image, "kindest/node:v1.")
    error_message = "node_image must be a kindest/node:v1.x.y image."
  }
}

variable "node_pools" {
  description = "kind worker nodes per pool (role system | cpu-serving, count, labels); null = one system and one cpu-serving worker."
  type = map(object({
    role   = string
    count  = optional(number, 1)
    labels = optional(map(string), {})
  }))
  default = null

  validation {
    condition     = var.node_pools == null || try(length(var.node_pools) > 0, false)
    error_message = "node_pools must be null or name at least one pool."
  }
}

variable "image" {
  description = "Shipyard image (`make image` builds it; scripts/infra.sh loads a local one into kind)."
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

variable "models" {
  description = "Stable and canary versions per model: {name = {stable_version, canary = {version, weight, analysis}}}; the platform module checks the shape."
  type        = any
  default     = { fraud-scoring = { stable_version = "1" } }

  validation {
    condition     = can(keys(var.models)) && length(var.models) > 0
    error_message = "models must be a map naming at least one model."
  }
}

variable "install" {
  description = "Prerequisites to install: kube-prometheus-stack (monitoring) and KFP."
  type = object({
    kube_prometheus_stack = optional(bool, true)
    kfp                   = optional(bool, true)
  })
  default = {}

  validation {
    condition     = var.install != null
    error_message = "install must be an object."
  }
}

variable "postgres_password" {
  description = "Password of the in-cluster PostgreSQL (MLflow). scripts/infra.sh generates it into secrets.auto.tfvars."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.postgres_password) >= 16
    error_message = "postgres_password must be at least 16 characters."
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
