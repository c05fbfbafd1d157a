# Plan-only: nothing runs the kind CLI (provisioners run on apply only).

run "default_pools_carry_the_gke_pool_labels" {
  command = plan

  assert {
    condition     = length(yamldecode(output.config).nodes) == 3
    error_message = "the default cluster is one control plane and two workers (system, cpu-serving)"
  }
  assert {
    condition     = toset([for n in yamldecode(output.config).nodes : n.labels["shipyard.io/pool"] if n.role == "worker"]) == toset(["system", "cpu-serving"])
    error_message = "every worker carries shipyard.io/pool=<pool key>"
  }
  assert {
    condition     = output.pool_labels["cpu-serving"]["shipyard.io/role"] == "cpu-serving"
    error_message = "the cpu-serving pool carries shipyard.io/role=cpu-serving"
  }
  assert {
    condition     = alltrue([for n in yamldecode(output.config).nodes : n.image == "kindest/node:v1.33.1"])
    error_message = "every node runs the pinned node image"
  }
  assert {
    condition     = output.kube_context == "kind-shipyard"
    error_message = "the kubectl context is kind-<cluster_name>"
  }
}

run "pool_counts_and_extra_labels" {
  command = plan

  variables {
    cluster_name = "demo"
    node_pools = {
      system  = { role = "system", count = 1 }
      serving = { role = "cpu-serving", count = 2, labels = { "example.com/team" = "ml" } }
    }
  }

  assert {
    condition     = length([for n in yamldecode(output.config).nodes : n if n.role == "worker" && try(n.labels["shipyard.io/pool"], "") == "serving"]) == 2
    error_message = "count = 2 makes two workers of the pool"
  }
  assert {
    condition     = output.pool_labels["serving"]["example.com/team"] == "ml"
    error_message = "extra labels reach the nodes"
  }
}

run "gpu_pool_rejected" {
  command = plan
  variables {
    node_pools = {
      cpu-serving = { role = "cpu-serving" }
      gpu         = { role = "gpu" }
    }
  }
  expect_failures = [var.node_pools]
}

run "no_cpu_serving_node_rejected" {
  command = plan
  variables {
    node_pools = { system = { role = "system" } }
  }
  expect_failures = [var.node_pools]
}

run "bad_cluster_name_rejected" {
  command = plan
  variables {
    cluster_name = "Shipyard_Dev"
  }
  expect_failures = [var.cluster_name]
}

run "old_kubernetes_rejected" {
  command = plan
  variables {
    node_image = "kindest/node:v1.27.3"
  }
  expect_failures = [var.node_image]
}
