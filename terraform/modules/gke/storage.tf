# One versioned bucket: MLflow artifacts under mlflow/, the Triton model repository under models/
# (<model>/<version>/, written by the pipeline's export step). Versioning keeps overwritten or
# deleted objects recoverable; lifecycle rules bound what that keeps.
resource "google_storage_bucket" "artifacts" {
  project                     = var.project_id
  name                        = "${var.project_id}-${var.name}-artifacts"
  location                    = upper(var.artifacts_bucket.location != "" ? var.artifacts_bucket.location : var.region)
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.artifacts_bucket.force_destroy
  labels                      = local.labels

  versioning {
    enabled = true
  }

  soft_delete_policy {
    retention_duration_seconds = 7 * 24 * 3600
  }

  lifecycle_rule {
    condition {
      num_newer_versions = var.artifacts_bucket.noncurrent_versions
      with_state         = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.artifacts_bucket.noncurrent_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  dynamic "logging" {
    for_each = var.artifacts_bucket.access_log_bucket == "" ? [] : [var.artifacts_bucket.access_log_bucket]
    content {
      log_bucket = logging.value
    }
  }
}
