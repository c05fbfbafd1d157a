# Plan-only with a mocked google provider: no project, no credentials, no network. Asserts what
# the plan would create and that bad variables are refused by validation.

mock_provider "google" {
  # Generated values must pass the provider's own checks where other resources use them.
  mock_resource "google_service_account" {
    defaults = {
      name  = "projects/shipyard-test/serviceAccounts/shipyard-sa@shipyard-test.iam.gserviceaccount.com"
      email = "shipyard-sa@shipyard-test.iam.gserviceaccount.com"
    }
  }
  mock_resource "google_compute_network" {
    defaults = {
      id        = "projects/shipyard-test/global/networks/shipyard"
      self_link = "https://www.googleapis.com/compute/v1/projects/shipyard-test/global/networks/shipyard"
    }
  }
}

variables {
  project_id         = "shipyard-test"
  region             = "us-central1"
  mlflow_db_password = "0123456789abcdef-test"
  master_authorized_networks = [
    { cidr_block = "203.0.113.10/32", display_name = "workstation" },
  ]
}

run "gpu_pool_is_tainted_labelled_accelerated_spot_and_scales_from_zero" {
  command = plan

  assert {
    condition     = google_container_node_pool.pools["gpu-l4"].node_config[0].guest_accelerator[0].type == "nvidia-l4" && google_container_node_pool.pools["gpu-l4"].node_config[0].guest_accelerator[0].count == 1
    error_message = "the GPU pool has one nvidia-l4 per node"
  }
  assert {
    condition     = google_container_node_pool.pools["gpu-l4"].node_config[0].guest_accelerator[0].gpu_driver_installation_config[0].gpu_driver_version == "LATEST"
    error_message = "GKE installs the NVIDIA driver"
  }
  assert {
    condition = anytrue([for t in google_container_node_pool.pools["gpu-l4"].node_config[0].taint :
    t.key == "nvidia.com/gpu" && t.value == "present" && t.effect == "NO_SCHEDULE"])
    error_message = "the GPU pool is tainted nvidia.com/gpu=present:NoSchedule"
  }
  assert {
    condition     = length(google_container_node_pool.pools["gpu-l4"].node_config[0].taint) == 1
    error_message = "the GPU taint appears once"
  }
  assert {
    condition     = google_container_node_pool.pools["gpu-l4"].node_config[0].labels["shipyard.io/pool"] == "gpu-l4" && google_container_node_pool.pools["gpu-l4"].node_config[0].labels["shipyard.io/role"] == "gpu"
    error_message = "the GPU pool's nodes carry shipyard.io/pool and shipyard.io/role"
  }
  assert {
    condition     = google_container_node_pool.pools["gpu-l4"].node_config[0].spot
    error_message = "the GPU pool uses Spot VMs by default"
  }
  assert {
    condition     = google_container_node_pool.pools["gpu-l4"].autoscaling[0].total_min_node_count == 0 && google_container_node_pool.pools["gpu-l4"].autoscaling[0].total_max_node_count == 4
    error_message = "the GPU pool autoscales from zero to four"
  }
  assert {
    condition     = google_container_node_pool.pools["gpu-l4"].autoscaling[0].location_policy == "ANY" && google_container_node_pool.pools["gpu-l4"].initial_node_count == 0
    error_message = "a spot pool takes capacity in any zone and starts empty"
  }
  assert {
    condition     = length(google_container_node_pool.pools["cpu-serving"].node_config[0].taint) == 0
    error_message = "CPU pools have no GPU taint"
  }
  assert {
    condition     = google_container_node_pool.pools["system"].node_config[0].spot == false && google_container_node_pool.pools["system"].autoscaling[0].total_min_node_count == 1
    error_message = "the system pool is on-demand with at least one node"
  }
  assert {
    condition     = alltrue([for p in google_container_node_pool.pools : p.node_config[0].workload_metadata_config[0].mode == "GKE_METADATA" && p.node_config[0].shielded_instance_config[0].enable_secure_boot])
    error_message = "every pool uses the GKE metadata server (workload identity) and secure boot"
  }
  assert {
    condition     = output.pool_labels["cpu-serving"]["shipyard.io/role"] == "cpu-serving"
    error_message = "pool labels are exported for the chart's node selectors"
  }
}

run "cluster_is_private_with_workload_identity_and_network_policy" {
  command = plan

  assert {
    condition     = google_container_cluster.this.private_cluster_config[0].enable_private_nodes && !google_container_cluster.this.private_cluster_config[0].enable_private_endpoint
    error_message = "nodes are private; the endpoint is public but restricted"
  }
  assert {
    condition     = [for b in google_container_cluster.this.master_authorized_networks_config[0].cidr_blocks : b.cidr_block] == ["203.0.113.10/32"]
    error_message = "only the authorized networks reach the control plane"
  }
  assert {
    condition     = google_container_cluster.this.workload_identity_config[0].workload_pool == "shipyard-test.svc.id.goog"
    error_message = "workload identity is on"
  }
  assert {
    condition     = google_container_cluster.this.release_channel[0].channel == "REGULAR"
    error_message = "the cluster follows the REGULAR channel"
  }
  assert {
    condition     = google_container_cluster.this.enable_shielded_nodes && google_container_cluster.this.datapath_provider == "ADVANCED_DATAPATH"
    error_message = "shielded nodes and Dataplane V2 (network policy enforcement)"
  }
  assert {
    condition     = toset(google_container_cluster.this.logging_config[0].enable_components) == toset(["SYSTEM_COMPONENTS", "WORKLOADS"])
    error_message = "system and workload logs go to Cloud Logging"
  }
  assert {
    condition     = google_container_cluster.this.remove_default_node_pool
    error_message = "the default node pool is replaced by var.node_pools"
  }
  assert {
    condition     = !contains([for m in google_project_iam_member.nodes : m.role], "roles/editor")
    error_message = "nodes do not run as an editor"
  }
  assert {
    condition     = google_service_account_iam_member.workload_identity["serving/triton"].member == "serviceAccount:shipyard-test.svc.id.goog[shipyard/shipyard-triton]"
    error_message = "Triton's Kubernetes service account acts as the serving Google service account"
  }
  assert {
    condition     = google_storage_bucket_iam_member.artifacts["serving"].role == "roles/storage.objectViewer"
    error_message = "serving only reads the bucket"
  }
}

run "bucket_is_versioned_and_private" {
  command = plan

  assert {
    condition     = google_storage_bucket.artifacts.versioning[0].enabled
    error_message = "the artifacts bucket is versioned"
  }
  assert {
    condition     = google_storage_bucket.artifacts.uniform_bucket_level_access && google_storage_bucket.artifacts.public_access_prevention == "enforced"
    error_message = "the bucket is never public"
  }
  assert {
    condition     = google_storage_bucket.artifacts.name == "shipyard-test-shipyard-artifacts" && output.model_repository_uri == "gs://shipyard-test-shipyard-artifacts/models"
    error_message = "the model repository lives under models/ of the bucket"
  }
}

run "sql_has_backups_pitr_and_no_public_ip" {
  command = plan

  assert {
    condition     = google_sql_database_instance.mlflow[0].settings[0].backup_configuration[0].enabled && google_sql_database_instance.mlflow[0].settings[0].backup_configuration[0].point_in_time_recovery_enabled
    error_message = "Cloud SQL backs up daily with point-in-time recovery"
  }
  assert {
    condition     = google_sql_database_instance.mlflow[0].settings[0].backup_configuration[0].backup_retention_settings[0].retained_backups == 7
    error_message = "seven backups are kept"
  }
  assert {
    condition     = google_sql_database_instance.mlflow[0].settings[0].ip_configuration[0].ipv4_enabled == false && google_sql_database_instance.mlflow[0].settings[0].ip_configuration[0].ssl_mode == "ENCRYPTED_ONLY"
    error_message = "Cloud SQL has a private IP only and refuses plaintext"
  }
  assert {
    condition     = google_sql_database.mlflow[0].name == "mlflow" && google_sql_user.mlflow[0].name == "mlflow"
    error_message = "the mlflow database and user exist"
  }
}

run "in_cluster_postgres_alternative" {
  command = plan

  variables {
    cloud_sql          = { enabled = false }
    mlflow_db_password = null
  }

  assert {
    condition     = length(google_sql_database_instance.mlflow) == 0 && length(google_service_networking_connection.private_services) == 0 && output.cloud_sql == null
    error_message = "without Cloud SQL nothing of it is created"
  }
}

run "custom_pools_from_the_one_map" {
  command = plan

  variables {
    node_pools = {
      system = { role = "system", machine_type = "e2-standard-2", min_nodes = 1, max_nodes = 2 }
      cpu    = { role = "cpu-serving", machine_type = "c3-standard-8", min_nodes = 2, max_nodes = 8 }
      a100 = {
        role         = "gpu"
        machine_type = "a2-highgpu-2g"
        max_nodes    = 2
        locations    = ["us-central1-c"]
        accelerator  = { type = "nvidia-tesla-a100", count = 2, driver_version = "DEFAULT" }
        labels       = { "example.com/tier" = "batch" }
      }
    }
  }

  assert {
    condition     = google_container_node_pool.pools["a100"].node_config[0].guest_accelerator[0].count == 2 && google_container_node_pool.pools["a100"].node_config[0].spot == false
    error_message = "an on-demand pool with two A100 per node"
  }
  assert {
    condition     = google_container_node_pool.pools["a100"].node_locations == toset(["us-central1-c"])
    error_message = "a pool can be narrowed to the zones that have its GPUs"
  }
  assert {
    condition     = google_container_node_pool.pools["a100"].node_config[0].labels["example.com/tier"] == "batch" && google_container_node_pool.pools["a100"].autoscaling[0].location_policy == "BALANCED"
    error_message = "extra labels pass through; on-demand pools balance across zones"
  }
  assert {
    condition     = length(google_container_node_pool.pools) == 3
    error_message = "exactly the pools of the map"
  }
}

# -- Validation: bad variables are refused before anything is planned -----------------------

run "gpu_pool_without_accelerator_rejected" {
  command = plan
  variables {
    node_pools = {
      system = { role = "system", machine_type = "e2-standard-4", min_nodes = 1 }
      gpu    = { role = "gpu", machine_type = "g2-standard-8" }
    }
  }
  expect_failures = [var.node_pools]
}

run "accelerator_on_cpu_pool_rejected" {
  command = plan
  variables {
    node_pools = {
      system = { role = "system", machine_type = "e2-standard-4", min_nodes = 1 }
      cpu    = { role = "cpu-serving", machine_type = "n2-standard-4", accelerator = { type = "nvidia-l4" } }
    }
  }
  expect_failures = [var.node_pools]
}

run "bad_accelerator_count_rejected" {
  command = plan
  variables {
    node_pools = {
      system = { role = "system", machine_type = "e2-standard-4", min_nodes = 1 }
      gpu    = { role = "gpu", machine_type = "g2-standard-8", accelerator = { type = "nvidia-l4", count = 3 } }
    }
  }
  expect_failures = [var.node_pools]
}

run "min_above_max_rejected" {
  command = plan
  variables {
    node_pools = {
      system = { role = "system", machine_type = "e2-standard-4", min_nodes = 4, max_nodes = 2 }
    }
  }
  expect_failures = [var.node_pools]
}

run "spot_system_pool_rejected" {
  command = plan
  variables {
    node_pools = {
      system = { role = "system", machine_type = "e2-standard-4", min_nodes = 1, spot = true }
    }
  }
  expect_failures = [var.node_pools]
}

run "missing_system_pool_rejected" {
  command = plan
  variables {
    node_pools = {
      cpu = { role = "cpu-serving", machine_type = "n2-standard-4" }
    }
  }
  expect_failures = [var.node_pools]
}

run "pool_zone_outside_region_rejected" {
  command = plan
  variables {
    node_pools = {
      system = { role = "system", machine_type = "e2-standard-4", min_nodes = 1, locations = ["europe-west4-a"] }
    }
  }
  expect_failures = [var.node_pools]
}

run "open_control_plane_rejected" {
  command = plan
  variables {
    master_authorized_networks = [{ cidr_block = "0.0.0.0/0", display_name = "everyone" }]
  }
  expect_failures = [var.master_authorized_networks]
}

run "bad_project_id_rejected" {
  command = plan
  variables {
    project_id = "My_Project"
  }
  expect_failures = [var.project_id]
}

run "zone_as_region_rejected" {
  command = plan
  variables {
    region = "us-central1-a"
  }
  expect_failures = [var.region]
}

run "bad_release_channel_rejected" {
  command = plan
  variables {
    release_channel = "BETA"
  }
  expect_failures = [var.release_channel]
}

run "missing_sql_password_rejected" {
  command = plan
  variables {
    mlflow_db_password = null
  }
  expect_failures = [var.mlflow_db_password]
}

run "no_sql_backups_kept_rejected" {
  command = plan
  variables {
    cloud_sql = { retained_backups = 0 }
  }
  expect_failures = [var.cloud_sql]
}
