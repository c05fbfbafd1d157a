locals {
  labels = merge(var.labels, { app = "shipyard", cluster = var.name })

  # Labels every node of a pool carries: the same keys the kind module sets.
  pool_labels = {
    for name, pool in var.node_pools : name => merge(pool.labels, {
      "shipyard.io/pool" = name
      "shipyard.io/role" = pool.role
    })
  }
  # GPU pools are tainted so that only pods tolerating GPUs (Triton's GPU deployment) land there.
  gpu_taint = { key = "nvidia.com/gpu", value = "present", effect = "NO_SCHEDULE" }
  pool_taints = {
    for name, pool in var.node_pools : name => concat(
      pool.role == "gpu" ? [local.gpu_taint] : [],
      [for t in pool.taints : t if !(pool.role == "gpu" && t.key == local.gpu_taint.key)],
    )
  }

  # The chart names its service accounts <fullname>-<component>, fullname being the release name
  # when it contains "shipyard" (see helm/shipyard/templates/_helpers.tpl).
  chart_fullname = substr(strcontains(var.release_name, "shipyard") ? var.release_name : "${var.release_name}-shipyard", 0, 40)
  workload_pool  = "${var.project_id}.svc.id.goog"
}
