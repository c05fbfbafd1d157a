output "namespace" {
  description = "Namespace of the Shipyard release."
  value       = kubernetes_namespace_v1.shipyard.metadata[0].name
}

output "release" {
  description = "Helm release name of Shipyard (helm test <release> -n <namespace>)."
  value       = helm_release.shipyard.name
}

output "chart_values" {
  description = "Values given to the Shipyard chart."
  value       = module.chart_values.values
}

output "endpoints" {
  description = "In-cluster URLs of the platform's services (kubectl port-forward to reach them from outside)."
  value = {
    gateway    = "http://${local.release}-gateway.${var.namespace}.svc:8080"
    mlflow     = "http://${local.release}-mlflow.${var.namespace}.svc:5000"
    prometheus = var.install.kube_prometheus_stack ? local.prometheus_url : null
    grafana    = var.install.kube_prometheus_stack ? "http://kube-prometheus-stack-grafana.${var.monitoring_namespace}.svc:80" : null
    kfp        = var.install.kfp ? local.kfp_host : null
  }
}

output "hourly_cost_estimate" {
  description = "USD per hour of the GPUs and CPU cores in var.capacity, priced with cost_model (the same prices the chart's cost rules use)."
  value = {
    usd_per_hour = local.hourly_cost
    cost_model   = var.cost_model
    capacity     = var.capacity
  }
}
