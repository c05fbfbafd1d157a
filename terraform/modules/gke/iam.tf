# Least privilege: nodes run as their own service account that may only write logs and metrics
# and pull images; workloads reach Google APIs through workload identity, each with its own
# service account and only the roles it needs.

resource "google_service_account" "nodes" {
  project      = var.project_id
  account_id   = "${var.name}-nodes"
  display_name = "Shipyard GKE nodes (${var.name})"
}

resource "google_project_iam_member" "nodes" {
  for_each = toset([
    "roles/container.defaultNodeServiceAccount", # logs, metrics, resource metadata
    "roles/artifactregistry.reader",             # images from the project's registries
  ])

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.nodes.email}"
}

resource "google_service_account" "workloads" {
  for_each = {
    serving   = "Shipyard serving: Triton and the gateway read the model repository"
    mlflow    = "Shipyard MLflow: artifacts and the backend store"
    pipelines = "Shipyard pipelines: KFP steps write models and artifacts"
  }

  project      = var.project_id
  account_id   = "${var.name}-${each.key}"
  display_name = each.value
}

# Which Kubernetes service accounts act as which Google service account.
locals {
  workload_identities = {
    "serving/triton"   = { gsa = "serving", ksa = "${var.workload_namespace}/${local.chart_fullname}-triton" }
    "serving/gateway"  = { gsa = "serving", ksa = "${var.workload_namespace}/${local.chart_fullname}-gateway" }
    "mlflow/mlflow"    = { gsa = "mlflow", ksa = "${var.workload_namespace}/${local.chart_fullname}-mlflow" }
    "pipelines/runner" = { gsa = "pipelines", ksa = "kubeflow/pipeline-runner" }
  }
}

resource "google_service_account_iam_member" "workload_identity" {
  for_each = local.workload_identities

  service_account_id = google_service_account.workloads[each.value.gsa].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${local.workload_pool}[${each.value.ksa}]"

  depends_on = [google_container_cluster.this] # the identity pool exists once the cluster does
}

resource "google_storage_bucket_iam_member" "artifacts" {
  for_each = {
    serving   = "roles/storage.objectViewer"
    mlflow    = "roles/storage.objectUser"
    pipelines = "roles/storage.objectUser"
  }

  bucket = google_storage_bucket.artifacts.name
  role   = each.value
  member = "serviceAccount:${google_service_account.workloads[each.key].email}"
}

resource "google_project_iam_member" "mlflow_sql" {
  count = var.cloud_sql.enabled ? 1 : 0

  project = var.project_id
  role    = "roles/cloudsql.client"
  member  = "serviceAccount:${google_service_account.workloads["mlflow"].email}"
}
