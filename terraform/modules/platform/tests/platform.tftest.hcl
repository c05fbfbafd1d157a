# Plan-only with mocked providers: no cluster, no credentials. Asserts the releases chosen and
# the chart values derived from the variables.

mock_provider "kubernetes" {}
mock_provider "helm" {}

variables {
  cluster_kind      = "kind"
  kubeconfig_path   = "/tmp/kind.yaml"
  kube_context      = "kind-shipyard"
  postgres_password = "0123456789abcdef-test"
  redis_password    = "0123456789abcdef-test"
}

run "kind_installs_data_services_in_cluster" {
  command = plan

  assert {
    condition     = length(helm_release.postgresql) == 1 && length(helm_release.redis) == 1
    error_message = "kind gets PostgreSQL and Redis in the cluster"
  }
  assert {
    condition     = helm_release.postgresql[0].version == "16.7.27" && helm_release.redis[0].version == "22.0.7"
    error_message = "prerequisite charts are pinned"
  }
  assert {
    condition     = helm_release.kube_prometheus_stack[0].version == "82.6.0"
    error_message = "kube-prometheus-stack is pinned"
  }
  assert {
    condition     = terraform_data.kfp[0].input.version == "2.14.3"
    error_message = "KFP manifests are pinned by release tag"
  }
  assert {
    condition     = output.chart_values.triton.gpu.enabled == false && output.chart_values.triton.cpu.enabled
    error_message = "kind runs the CPU Triton pool only"
  }
  assert {
    condition     = output.chart_values.gateway.replicas == 1 && output.chart_values.gateway.autoscaling.enabled == false
    error_message = "kind uses the small profile"
  }
  assert {
    condition     = output.chart_values.modelRepository.source == "volume" && length(kubernetes_persistent_volume_claim_v1.models) == 1
    error_message = "kind keeps the model repository on a claim this module creates"
  }
  assert {
    condition     = output.chart_values.featureStore.redis.host == "redis-master" && output.chart_values.featureStore.redis.existingSecret == "shipyard-redis"
    error_message = "the chart reads the in-cluster Redis with the password Secret"
  }
  assert {
    condition     = output.chart_values.monitoring.enabled && output.chart_values.rollout.prometheusUrl == "http://prometheus-operated.monitoring.svc:9090"
    error_message = "monitoring objects on, rollout analysis pointed at kube-prometheus-stack's Prometheus"
  }
  assert {
    condition     = output.chart_values.rollout.analysis.enabled == false
    error_message = "no canary, no rollout analysis"
  }
  assert {
    condition     = output.chart_values.rollout.retrain.enabled && output.chart_values.rollout.retrain.kfpHost == "http://ml-pipeline.kubeflow.svc:8888"
    error_message = "retraining goes to the KFP the platform installs"
  }
  assert {
    condition     = helm_release.shipyard.chart == "./../../../helm/shipyard"
    error_message = "the chart comes from this repository"
  }
  assert {
    condition     = output.hourly_cost_estimate.usd_per_hour == 0
    error_message = "kind costs nothing"
  }
}

run "gke_with_gpu_canary_and_managed_postgres" {
  command = plan

  variables {
    cluster_kind = "gke"
    postgres     = { managed = true, host = "10.30.0.5" }
    redis        = {}
    gpu_pool = {
      enabled       = true
      replicas      = 2
      node_selector = { "shipyard.io/role" = "gpu" }
    }
    cpu_pool = { replicas = 3, node_selector = { "shipyard.io/role" = "cpu-serving" } }
    models = {
      fraud-scoring = {
        stable_version = "3"
        canary = {
          version  = "4"
          weight   = 20
          analysis = { steps = [5, 20, 50, 100], max_error_ratio = 0.01, min_requests = 200 }
        }
      }
    }
    model_repository = { source = "gcs", gcs_bucket = "proj-shipyard-artifacts", service_account = "shipyard-serving@proj.iam.gserviceaccount.com" }
    mlflow           = { artifacts_destination = "gs://proj-shipyard-artifacts/mlflow", service_account = "shipyard-mlflow@proj.iam.gserviceaccount.com" }
    capacity         = { gpus = 1, cpu_cores = 8 }
    cost_model       = { spot_discount = 0.6, daily_budget = 120 }
  }

  assert {
    condition     = length(helm_release.postgresql) == 0 && length(kubernetes_secret_v1.postgresql) == 0
    error_message = "managed PostgreSQL: no in-cluster release"
  }
  assert {
    condition     = output.chart_values.triton.gpu.enabled && output.chart_values.triton.gpu.replicas == 2
    error_message = "the GPU pool is on with two replicas"
  }
  assert {
    condition     = output.chart_values.triton.gpu.nodeSelector["shipyard.io/role"] == "gpu"
    error_message = "the GPU deployment targets the GPU node pool"
  }
  assert {
    condition     = output.chart_values.models["fraud-scoring"].canary.weight == 20 && output.chart_values.models["fraud-scoring"].canary.version == "4"
    error_message = "the canary reaches the routing values"
  }
  assert {
    condition     = output.chart_values.models["fraud-scoring"].canary.analysis.min_requests == 200 && !contains(keys(output.chart_values.models["fraud-scoring"].canary.analysis), "max_p99_ratio")
    error_message = "analysis thresholds pass through; unset ones are left to the chart"
  }
  assert {
    condition     = output.chart_values.rollout.analysis.enabled
    error_message = "a canary turns the rollout analysis on"
  }
  assert {
    condition     = output.chart_values.networkPolicy.egress.postgres[0].to[0].ipBlock.cidr == "10.30.0.5/32"
    error_message = "egress to PostgreSQL is narrowed to the Cloud SQL address"
  }
  assert {
    condition     = output.chart_values.modelRepository.gcs.bucket == "proj-shipyard-artifacts" && length(kubernetes_persistent_volume_claim_v1.models) == 0
    error_message = "GKE reads the model repository from GCS"
  }
  assert {
    condition     = output.chart_values.gateway.autoscaling.enabled && output.chart_values.gateway.autoscaling.minReplicas == 2
    error_message = "GKE autoscales the gateway"
  }
  assert {
    condition     = abs(output.hourly_cost_estimate.usd_per_hour - (0.35 * 0.4 + 8 * 0.0316)) < 0.0001
    error_message = "cost: one spot GPU at 60% off plus eight CPU cores"
  }
  assert {
    condition     = output.chart_values.cost.spotDiscount == 0.6 && output.chart_values.cost.dailyBudget == 120 && output.chart_values.cost.gpuHour == 0.35
    error_message = "the cost model reaches the chart's cost values"
  }
}

run "gpu_on_kind_rejected" {
  command = plan
  variables {
    gpu_pool = { enabled = true }
  }
  expect_failures = [var.gpu_pool]
}

run "canary_weight_out_of_range_rejected" {
  command = plan
  variables {
    models = { fraud-scoring = { stable_version = "1", canary = { version = "2", weight = 150 } } }
  }
  expect_failures = [var.models]
}

run "canary_equal_to_stable_rejected" {
  command = plan
  variables {
    models = { fraud-scoring = { stable_version = "2", canary = { version = "2", weight = 10 } } }
  }
  expect_failures = [var.models]
}

run "short_password_rejected" {
  command = plan
  variables {
    postgres_password = "short"
  }
  expect_failures = [var.postgres_password]
}

run "managed_postgres_needs_a_host" {
  command = plan
  variables {
    cluster_kind = "gke"
    postgres     = { managed = true }
  }
  expect_failures = [var.postgres]
}

run "spot_discount_out_of_range_rejected" {
  command = plan
  variables {
    cost_model = { spot_discount = 1.5 }
  }
  expect_failures = [var.cost_model]
}
