variable "cluster_name" {
  description = "Name of the kind cluster (kubectl context kind-<name>)."
  type        = string
  default     = "shipyard"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$", var.cluster_name))
    error_message = "cluster_name must be 1-32 lowercase letters, digits or '-', starting and ending with a letter or digit."
  }
}

variable "node_image" {
  description = "kindest/node image of every node; its tag is the Kubernetes version (the chart needs >= 1.28)."
  type        = string
  default     = "kindest/node:v1.33.1"

  validation {
    condition     = can(regex("^kindest/node:v1\\.(2[89]|[3-9][0-9])\\.[0-9]+(@sha256:[a-f0-9]{64})?$", var.node_image))
    error_message = "node_image must be kindest/node:v1.<minor>.<patch>[@sha256:…] with minor >= 28."
  }
}

variable "kubeconfig_path" {
  description = "Where kind writes the cluster's kubeconfig; \"\" = <root module>/.kube/<cluster_name>.yaml."
  type        = string
  default     = ""

  validation {
    condition     = var.kubeconfig_path == "" || can(regex("\\.ya?ml$", var.kubeconfig_path))
    error_message = "kubeconfig_path must be empty or end in .yaml/.yml."
  }
}

variable "node_pools" {
  nullable    = false # null (an environment passing its own unset variable) means the default
  description = <<-EOT
    Worker nodes, one map entry per pool, named like the GKE environment's pools so the same
    node selectors work: role (system | cpu-serving), count, extra labels. Every node gets
    shipyard.io/pool=<key> and shipyard.io/role=<role>. kind has no GPUs, so there is no gpu role:
    the chart's kind profile runs the CPU Triton pool only (the fallback path).
  EOT
  type = map(object({
    role   = string
    count  = optional(number, 1)
    labels = optional(map(string), {})
  }))
  default = {
    system      = { role = "system" }
    cpu-serving = { role = "cpu-serving" }
  }

  validation {
    condition     = alltrue([for name, _ in var.node_pools : can(regex("^[a-z][-a-z0-9]{0,38}[a-z0-9]$", name))])
    error_message = "node_pools keys must be 2-40 lowercase letters, digits or '-' (they become label values)."
  }
  validation {
    condition     = alltrue([for p in var.node_pools : contains(["system", "cpu-serving"], p.role)])
    error_message = "node_pools role must be system or cpu-serving: kind nodes have no GPUs (use the gke environment for GPU pools)."
  }
  validation {
    condition     = alltrue([for p in var.node_pools : p.count >= 0 && p.count <= 4 && floor(p.count) == p.count])
    error_message = "node_pools count must be a whole number from 0 to 4 per pool (every node is a container on this machine)."
  }
  validation {
    condition     = length([for p in var.node_pools : p if p.role == "cpu-serving" && p.count > 0]) > 0
    error_message = "node_pools needs at least one cpu-serving node: the CPU Triton pool and the gateway run there."
  }
  validation {
    condition     = alltrue(flatten([for p in var.node_pools : [for k, _ in p.labels : !startswith(k, "shipyard.io/")]]))
    error_message = "node_pools labels must not set shipyard.io/* keys: the module sets shipyard.io/pool and shipyard.io/role itself."
  }
}

variable "wait_seconds" {
  description = "How long `kind create cluster` waits for the control plane to become ready."
  type        = number
  default     = 300

  validation {
    condition     = var.wait_seconds >= 30 && var.wait_seconds <= 1800
    error_message = "wait_seconds must be between 30 and 1800."
  }
}
