# -- Project and cluster ----------------------------------------------------------------------

variable "project_id" {
  description = "Google Cloud project that holds the cluster, bucket and database."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project ID: 6-30 lowercase letters, digits or '-', starting with a letter."
  }
}

variable "region" {
  description = "Region of the (regional) cluster, subnet, bucket and Cloud SQL instance, e.g. us-central1."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as us-central1 (not a zone)."
  }
}

variable "zones" {
  description = "Zones of the cluster's nodes (a subset of the region's); empty = GKE's default zones of the region. Pools may narrow it (GPUs are not in every zone)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for z in var.zones : startswith(z, "${var.region}-")])
    error_message = "zones must be zones of region (e.g. us-central1-a for us-central1)."
  }
}

variable "name" {
  description = "Name of the cluster and prefix of every resource (service accounts, bucket, database, network)."
  type        = string
  default     = "shipyard"

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{2,19}[a-z0-9]$", var.name))
    error_message = "name must be 4-21 lowercase letters, digits or '-', starting with a letter (it prefixes service account IDs, which are at most 30 characters)."
  }
}

variable "release_channel" {
  description = "GKE release channel: RAPID, REGULAR, STABLE or EXTENDED."
  type        = string
  default     = "REGULAR"

  validation {
    condition     = contains(["RAPID", "REGULAR", "STABLE", "EXTENDED"], var.release_channel)
    error_message = "release_channel must be RAPID, REGULAR, STABLE or EXTENDED."
  }
}

variable "deletion_protection" {
  description = "Refuse to destroy the cluster and the Cloud SQL instance (set false before `make down CLUSTER=gke` of a throwaway environment)."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels on every resource that takes them (cost allocation); app=shipyard and cluster=<name> are always added."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "labels keys must start with a lowercase letter; keys and values are at most 63 lowercase letters, digits, '_' or '-'."
  }
}

# -- Network and control plane ----------------------------------------------------------------

variable "network" {
  description = "CIDRs of the VPC subnet (nodes), the pods' and services' secondary ranges and the control plane's /28."
  type = object({
    subnet_cidr            = optional(string, "10.10.0.0/20")
    pods_cidr              = optional(string, "10.20.0.0/14")
    services_cidr          = optional(string, "10.24.0.0/20")
    master_ipv4_cidr_block = optional(string, "172.16.0.0/28")
  })
  default = {}

  validation {
    condition     = alltrue([for c in values(var.network) : can(cidrhost(c, 0))])
    error_message = "network CIDRs must be valid IPv4 CIDR blocks."
  }
  validation {
    condition     = endswith(var.network.master_ipv4_cidr_block, "/28")
    error_message = "network.master_ipv4_cidr_block must be a /28 (GKE's requirement for private clusters)."
  }
}

variable "private_endpoint" {
  description = "Make the control plane reachable only from inside the VPC (then run tofu from a bastion or over a VPN). false: public endpoint limited to master_authorized_networks."
  type        = bool
  default     = false
}

variable "master_authorized_networks" {
  description = "CIDRs allowed to reach the control plane (your workstation's or CI's egress address, as a.b.c.d/32)."
  type = list(object({
    cidr_block   = string
    display_name = string
  }))
  default = []

  validation {
    condition     = alltrue([for n in var.master_authorized_networks : can(cidrhost(n.cidr_block, 0))])
    error_message = "master_authorized_networks cidr_block values must be valid IPv4 CIDR blocks."
  }
  validation {
    condition     = alltrue([for n in var.master_authorized_networks : !contains(["0.0.0.0/0", "0.0.0.0/1", "128.0.0.0/1"], n.cidr_block)])
    error_message = "master_authorized_networks must not open the control plane to the whole internet (0.0.0.0/0)."
  }
}

variable "rbac_security_group" {
  description = "Google Group (gke-security-groups@<your domain>) whose member groups can be bound in Kubernetes RBAC; \"\" = RBAC for users and service accounts only."
  type        = string
  default     = ""

  validation {
    condition     = var.rbac_security_group == "" || can(regex("^gke-security-groups@[a-z0-9.-]+\\.[a-z]+$", var.rbac_security_group))
    error_message = "rbac_security_group must be empty or gke-security-groups@<domain>."
  }
}

variable "secrets_encryption_key" {
  description = "Cloud KMS key (projects/…/cryptoKeys/…) encrypting Kubernetes Secrets at the application layer; \"\" = Google-managed encryption only."
  type        = string
  default     = ""

  validation {
    condition     = var.secrets_encryption_key == "" || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.secrets_encryption_key))
    error_message = "secrets_encryption_key must be empty or projects/P/locations/L/keyRings/R/cryptoKeys/K."
  }
}

# -- Node pools -------------------------------------------------------------------------------

variable "node_pools" {
  nullable    = false # null (an environment passing its own unset variable) means the default
  description = <<-EOT
    Every node pool, one map entry each (the key is the pool's name and its shipyard.io/pool label).
    role: system (kube-system, monitoring, data services; exactly one, never spot), cpu-serving
    (gateway, Triton CPU pool, MLflow, Feast) or gpu (Triton GPU pool: needs accelerator; gets the
    taint nvidia.com/gpu=present:NoSchedule). min_nodes/max_nodes are totals across the pool's
    zones (min 0 = scale from zero); spot = Spot VMs; locations narrows the zones.
  EOT
  type = map(object({
    role         = string
    machine_type = string
    min_nodes    = optional(number, 0)
    max_nodes    = optional(number, 3)
    spot         = optional(bool, false)
    disk_size_gb = optional(number, 100)
    disk_type    = optional(string, "pd-balanced")
    locations    = optional(list(string), [])
    accelerator = optional(object({
      type           = string
      count          = optional(number, 1)
      driver_version = optional(string, "LATEST")
    }))
    labels = optional(map(string), {})
    taints = optional(list(object({
      key    = string
      value  = string
      effect = string
    })), [])
  }))
  default = {
    system = {
      role         = "system"
      machine_type = "e2-standard-4"
      min_nodes    = 1
      max_nodes    = 3
    }
    cpu-serving = {
      role         = "cpu-serving"
      machine_type = "n2-standard-4"
      min_nodes    = 1
      max_nodes    = 6
    }
    gpu-l4 = {
      role         = "gpu"
      machine_type = "g2-standard-8"
      min_nodes    = 0
      max_nodes    = 4
      spot         = true
      accelerator  = { type = "nvidia-l4", count = 1 }
    }
  }

  validation {
    condition     = alltrue([for name, _ in var.node_pools : can(regex("^[a-z][-a-z0-9]{0,38}[a-z0-9]$", name))])
    error_message = "node_pools keys must be 2-40 lowercase letters, digits or '-', starting with a letter."
  }
  validation {
    condition     = alltrue([for p in var.node_pools : contains(["system", "cpu-serving", "gpu"], p.role)])
    error_message = "node_pools role must be system, cpu-serving or gpu."
  }
  validation {
    condition     = length([for p in var.node_pools : p if p.role == "system"]) == 1
    error_message = "node_pools must have exactly one pool with role = system."
  }
  validation {
    condition     = alltrue([for p in var.node_pools : p.role != "system" || (p.min_nodes >= 1 && !p.spot)])
    error_message = "the system pool needs min_nodes >= 1 and spot = false: cluster services must always have a stable node."
  }
  validation {
    condition     = alltrue([for p in var.node_pools : (p.role == "gpu") == (p.accelerator != null)])
    error_message = "a pool has an accelerator if and only if its role is gpu."
  }
  validation {
    condition     = alltrue([for p in var.node_pools : p.min_nodes >= 0 && p.min_nodes <= p.max_nodes && p.max_nodes >= 1 && p.max_nodes <= 100 && floor(p.min_nodes) == p.min_nodes && floor(p.max_nodes) == p.max_nodes])
    error_message = "node_pools need whole numbers 0 <= min_nodes <= max_nodes, 1 <= max_nodes <= 100."
  }
  validation {
    condition     = alltrue([for p in var.node_pools : can(regex("^[a-z][a-z0-9]*-[a-z0-9-]+$", p.machine_type))])
    error_message = "node_pools machine_type must be a Compute Engine machine type such as n2-standard-4."
  }
  validation {
    condition     = alltrue([for p in var.node_pools : contains(["pd-standard", "pd-balanced", "pd-ssd", "hyperdisk-balanced"], p.disk_type) && p.disk_size_gb >= 20 && p.disk_size_gb <= 2000])
    error_message = "node_pools disk_type must be pd-standard, pd-balanced, pd-ssd or hyperdisk-balanced, with 20-2000 GB."
  }
  validation {
    condition = alltrue([for p in var.node_pools : p.accelerator == null || try(
      can(regex("^nvidia-[a-z0-9-]+$", p.accelerator.type)) &&
      contains([1, 2, 4, 8], p.accelerator.count) &&
    contains(["DEFAULT", "LATEST", "INSTALLATION_DISABLED"], p.accelerator.driver_version), false)])
    error_message = "accelerator needs type nvidia-* (e.g. nvidia-l4), count 1, 2, 4 or 8, and driver_version DEFAULT, LATEST or INSTALLATION_DISABLED."
  }
  validation {
    condition     = alltrue(flatten([for p in var.node_pools : [for z in p.locations : startswith(z, "${var.region}-")]]))
    error_message = "node_pools locations must be zones of region."
  }
  validation {
    condition     = alltrue(flatten([for p in var.node_pools : [for t in p.taints : contains(["NO_SCHEDULE", "PREFER_NO_SCHEDULE", "NO_EXECUTE"], t.effect)]]))
    error_message = "node_pools taint effect must be NO_SCHEDULE, PREFER_NO_SCHEDULE or NO_EXECUTE."
  }
  validation {
    condition     = alltrue(flatten([for p in var.node_pools : [for k, _ in p.labels : !startswith(k, "shipyard.io/")]]))
    error_message = "node_pools labels must not set shipyard.io/* keys: the module sets shipyard.io/pool and shipyard.io/role."
  }
}

# -- Artifacts and the MLflow database --------------------------------------------------------

variable "artifacts_bucket" {
  description = "The versioned GCS bucket for MLflow artifacts (mlflow/) and the Triton model repository (models/): location (\"\" = region), how many and how long noncurrent versions are kept, force_destroy."
  type = object({
    location            = optional(string, "")
    noncurrent_versions = optional(number, 5)
    noncurrent_days     = optional(number, 30)
    force_destroy       = optional(bool, false)
    access_log_bucket   = optional(string, "")
  })
  default = {}

  validation {
    condition     = var.artifacts_bucket.noncurrent_versions >= 1 && var.artifacts_bucket.noncurrent_days >= 1
    error_message = "artifacts_bucket keeps at least one noncurrent version for at least one day (rollbacks need them)."
  }
}

variable "cloud_sql" {
  description = "Cloud SQL PostgreSQL for MLflow (private IP, TLS only, automated backups and point-in-time recovery). enabled = false: the platform runs PostgreSQL in the cluster instead."
  type = object({
    enabled                        = optional(bool, true)
    database_version               = optional(string, "POSTGRES_18")
    tier                           = optional(string, "db-custom-1-3840")
    availability_type              = optional(string, "ZONAL")
    disk_size_gb                   = optional(number, 20)
    backup_start_time              = optional(string, "03:00")
    retained_backups               = optional(number, 7)
    point_in_time_recovery         = optional(bool, true)
    transaction_log_retention_days = optional(number, 7)
  })
  default = {}

  validation {
    condition     = can(regex("^POSTGRES_1[4-8]$", var.cloud_sql.database_version))
    error_message = "cloud_sql.database_version must be POSTGRES_14 … POSTGRES_18."
  }
  validation {
    condition     = contains(["ZONAL", "REGIONAL"], var.cloud_sql.availability_type)
    error_message = "cloud_sql.availability_type must be ZONAL or REGIONAL."
  }
  validation {
    condition     = can(regex("^([01][0-9]|2[0-3]):00$", var.cloud_sql.backup_start_time))
    error_message = "cloud_sql.backup_start_time must be a whole hour HH:00 (UTC)."
  }
  validation {
    condition     = var.cloud_sql.retained_backups >= 1 && var.cloud_sql.retained_backups <= 365 && var.cloud_sql.transaction_log_retention_days >= 1 && var.cloud_sql.transaction_log_retention_days <= 7
    error_message = "cloud_sql keeps 1-365 backups and 1-7 days of transaction logs."
  }
  validation {
    condition     = can(regex("^db-", var.cloud_sql.tier)) && var.cloud_sql.disk_size_gb >= 10
    error_message = "cloud_sql.tier must be a Cloud SQL tier (db-…) and disk_size_gb at least 10."
  }
}

variable "mlflow_db_password" {
  description = "Password of the Cloud SQL user mlflow (scripts/infra.sh generates one into secrets.auto.tfvars). Unused when cloud_sql.enabled = false."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = !var.cloud_sql.enabled || try(length(var.mlflow_db_password) >= 16 && can(regex("^[A-Za-z0-9_-]+$", var.mlflow_db_password)), false)
    error_message = "mlflow_db_password is required with Cloud SQL: at least 16 characters of A-Z a-z 0-9 _ -."
  }
}

# -- Workload identity ------------------------------------------------------------------------

variable "workload_namespace" {
  description = "Namespace of the Shipyard release: its Kubernetes service accounts get the serving and MLflow Google service accounts."
  type        = string
  default     = "shipyard"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.workload_namespace))
    error_message = "workload_namespace must be a DNS label."
  }
}

variable "release_name" {
  description = "Helm release name of Shipyard (its service accounts are <release>-gateway, -triton, -mlflow)."
  type        = string
  default     = "shipyard"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$", var.release_name))
    error_message = "release_name must be a DNS label of at most 40 characters."
  }
}
