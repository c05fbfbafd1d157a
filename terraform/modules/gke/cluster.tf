resource "google_container_cluster" "this" {
  # checkov:skip=CKV_GCP_12: Dataplane V2 (datapath_provider = ADVANCED_DATAPATH) enforces NetworkPolicy itself; the network_policy block (Calico) must stay off with it
  # checkov:skip=CKV_GCP_65: Google Groups for RBAC needs a Workspace domain with gke-security-groups; set rbac_security_group where one exists
  project        = var.project_id
  name           = var.name
  location       = var.region # regional: the control plane is replicated across zones
  node_locations = length(var.zones) > 0 ? var.zones : null

  network         = google_compute_network.this.id
  subnetwork      = google_compute_subnetwork.nodes.id
  networking_mode = "VPC_NATIVE"
  ip_allocation_policy {
    cluster_secondary_range_name  = "pods"
    services_secondary_range_name = "services"
  }
  # Dataplane V2 (eBPF) enforces NetworkPolicy natively; the chart relies on it.
  datapath_provider           = "ADVANCED_DATAPATH"
  enable_intranode_visibility = true

  # Node pools are managed below; the default one is removed right after creation.
  remove_default_node_pool = true
  initial_node_count       = 1
  deletion_protection      = var.deletion_protection
  resource_labels          = local.labels

  release_channel {
    channel = var.release_channel
  }

  private_cluster_config {
    enable_private_nodes    = true
    enable_private_endpoint = var.private_endpoint
    master_ipv4_cidr_block  = var.network.master_ipv4_cidr_block
    master_global_access_config {
      enabled = true
    }
  }

  master_authorized_networks_config {
    gcp_public_cidrs_access_enabled = false
    dynamic "cidr_blocks" {
      for_each = var.master_authorized_networks
      content {
        cidr_block   = cidr_blocks.value.cidr_block
        display_name = cidr_blocks.value.display_name
      }
    }
  }

  master_auth {
    client_certificate_config {
      issue_client_certificate = false
    }
  }

  workload_identity_config {
    workload_pool = local.workload_pool
  }

  enable_shielded_nodes = true

  dynamic "authenticator_groups_config" {
    for_each = var.rbac_security_group == "" ? [] : [var.rbac_security_group]
    content {
      security_group = authenticator_groups_config.value
    }
  }

  binary_authorization {
    evaluation_mode = "PROJECT_SINGLETON_POLICY_ENFORCE"
  }

  dynamic "database_encryption" {
    for_each = var.secrets_encryption_key == "" ? [] : [var.secrets_encryption_key]
    content {
      state    = "ENCRYPTED"
      key_name = database_encryption.value
    }
  }

  logging_config {
    enable_components = ["SYSTEM_COMPONENTS", "WORKLOADS"]
  }
  monitoring_config {
    enable_components = ["SYSTEM_COMPONENTS"]
    # Shipyard brings its own Prometheus (kube-prometheus-stack).
    managed_prometheus {
      enabled = false
    }
  }

  addons_config {
    # The gateway mounts the model repository from GCS read-only.
    gcs_fuse_csi_driver_config {
      enabled = true
    }
    gce_persistent_disk_csi_driver_config {
      enabled = true
    }
    http_load_balancing {
      disabled = false
    }
  }

  # GKE cost allocation: per-namespace and per-label cost in the billing export.
  cost_management_config {
    enabled = true
  }

  maintenance_policy {
    daily_maintenance_window {
      start_time = "03:00"
    }
  }

  # The short-lived default pool, hardened like the others.
  node_config {
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]
    image_type      = "COS_CONTAINERD"
    metadata        = { disable-legacy-endpoints = "true" }
    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
    workload_metadata_config {
      mode = "GKE_METADATA"
    }
  }

  lifecycle {
    ignore_changes = [node_config, initial_node_count]
  }

  depends_on = [google_project_iam_member.nodes]
}
