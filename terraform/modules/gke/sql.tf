# Cloud SQL PostgreSQL for MLflow's backend store: private IP only, TLS only, daily backups with
# point-in-time recovery. With cloud_sql.enabled = false the platform runs PostgreSQL in the cluster.
resource "google_sql_database_instance" "mlflow" {
  # checkov:skip=CKV_GCP_6: ssl_mode = ENCRYPTED_ONLY refuses every unencrypted connection; client certificates (TRUSTED_CLIENT_CERTIFICATE_REQUIRED) would need the Cloud SQL Auth Proxy beside MLflow, which the chart does not run
  # checkov:skip=CKV_GCP_79: the version is var.cloud_sql.database_version, default POSTGRES_18 (the newest major); checkov does not resolve optional() defaults of object variables
  count = var.cloud_sql.enabled ? 1 : 0

  project             = var.project_id
  name                = "${var.name}-mlflow"
  region              = var.region
  database_version    = var.cloud_sql.database_version
  deletion_protection = var.deletion_protection

  settings {
    tier                        = var.cloud_sql.tier
    edition                     = "ENTERPRISE"
    availability_type           = var.cloud_sql.availability_type
    disk_type                   = "PD_SSD"
    disk_size                   = var.cloud_sql.disk_size_gb
    disk_autoresize             = true
    deletion_protection_enabled = var.deletion_protection
    user_labels                 = local.labels

    backup_configuration {
      enabled                        = true
      start_time                     = var.cloud_sql.backup_start_time
      point_in_time_recovery_enabled = var.cloud_sql.point_in_time_recovery
      transaction_log_retention_days = var.cloud_sql.transaction_log_retention_days
      backup_retention_settings {
        retained_backups = var.cloud_sql.retained_backups
        retention_unit   = "COUNT"
      }
    }

    ip_configuration {
      ipv4_enabled                                  = false
      private_network                               = google_compute_network.this.id
      ssl_mode                                      = "ENCRYPTED_ONLY"
      enable_private_path_for_google_cloud_services = true
    }

    maintenance_window {
      day  = 7
      hour = 4
    }

    insights_config {
      query_insights_enabled = true
    }

    dynamic "database_flags" {
      for_each = {
        log_checkpoints            = "on"
        log_connections            = "on"
        log_disconnections         = "on"
        log_lock_waits             = "on"
        log_temp_files             = "0"
        log_min_duration_statement = "-1"
        log_min_messages           = "error"
        log_min_error_statement    = "error"
        "cloudsql.enable_pgaudit"  = "on"
      }
      content {
        name  = database_flags.key
        value = database_flags.value
      }
    }
  }

  depends_on = [google_service_networking_connection.private_services]
}

resource "google_sql_database" "mlflow" {
  count = var.cloud_sql.enabled ? 1 : 0

  project  = var.project_id
  name     = "mlflow"
  instance = google_sql_database_instance.mlflow[0].name
}

resource "google_sql_user" "mlflow" {
  count = var.cloud_sql.enabled ? 1 : 0

  project  = var.project_id
  name     = "mlflow"
  instance = google_sql_database_instance.mlflow[0].name
  password = var.mlflow_db_password
}
