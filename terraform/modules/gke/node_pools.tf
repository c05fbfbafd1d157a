# Every pool from var.node_pools: system, CPU serving and GPU pools differ only by their entry.
resource "google_container_node_pool" "pools" {
  for_each = var.node_pools

  project        = var.project_id
  name           = each.key
  location       = var.region
  cluster        = google_container_cluster.this.name
  node_locations = length(each.value.locations) > 0 ? each.value.locations : null

  # One node per zone to start where the pool has a minimum; scale-from-zero pools start empty.
  initial_node_count = each.value.min_nodes > 0 ? 1 : 0

  autoscaling {
    total_min_node_count = each.value.min_nodes
    total_max_node_count = each.value.max_nodes
    # Spot capacity comes and goes per zone: take it wherever it is.
    location_policy = each.value.spot ? "ANY" : "BALANCED"
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  upgrade_settings {
    strategy        = "SURGE"
    max_surge       = 1
    max_unavailable = 0
  }

  node_config {
    machine_type    = each.value.machine_type
    disk_size_gb    = each.value.disk_size_gb
    disk_type       = each.value.disk_type
    image_type      = "COS_CONTAINERD"
    spot            = each.value.spot
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"] # IAM, not scopes, limits it
    labels          = local.pool_labels[each.key]
    resource_labels = merge(local.labels, { pool = each.key })
    metadata        = { disable-legacy-endpoints = "true" }

    dynamic "taint" {
      for_each = local.pool_taints[each.key]
      content {
        key    = taint.value.key
        value  = taint.value.value
        effect = taint.value.effect
      }
    }

    dynamic "guest_accelerator" {
      for_each = each.value.accelerator == null ? [] : [each.value.accelerator]
      content {
        type  = guest_accelerator.value.type
        count = guest_accelerator.value.count
        # GKE installs the NVIDIA driver itself (no driver DaemonSet to manage).
        gpu_driver_installation_config {
          gpu_driver_version = guest_accelerator.value.driver_version
        }
      }
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }
  }

  lifecycle {
    ignore_changes = [initial_node_count]
  }
}
