# kube-prometheus-stack: Prometheus (selects every ServiceMonitor/PrometheusRule, not only its
# own release's), Alertmanager, Grafana with the dashboard sidecar watching all namespaces.
resource "helm_release" "kube_prometheus_stack" {
  count = var.install.kube_prometheus_stack ? 1 : 0

  name       = "kube-prometheus-stack"
  namespace  = kubernetes_namespace_v1.monitoring[0].metadata[0].name
  repository = "https://prometheus-community.github.io/helm-charts"
  chart      = "kube-prometheus-stack"
  version    = var.versions.kube_prometheus_stack
  wait       = true
  timeout    = 900
  values = [yamlencode({
    prometheus = {
      prometheusSpec = {
        serviceMonitorSelectorNilUsesHelmValues = false
        podMonitorSelectorNilUsesHelmValues     = false
        ruleSelectorNilUsesHelmValues           = false
        retention                               = local.kind ? "2d" : "15d"
        resources = local.kind ? {
          requests = { cpu = "100m", memory = "512Mi" }
          } : {
          requests = { cpu = "500m", memory = "2Gi" }
        }
      }
    }
    grafana = {
      sidecar = {
        dashboards = {
          enabled          = true
          searchNamespace  = "ALL"
          folderAnnotation = "grafana_folder"
          provider         = { foldersFromFilesStructure = true }
        }
      }
    }
    alertmanager = { enabled = true }
  })]
}
