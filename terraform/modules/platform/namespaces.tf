resource "kubernetes_namespace_v1" "shipyard" {
  metadata {
    name = var.namespace
    labels = {
      "app.kubernetes.io/part-of" = "shipyard"
      # The chart's pods pass "restricted"; Redis and PostgreSQL (Bitnami) pass it too.
      "pod-security.kubernetes.io/enforce" = "restricted"
      "pod-security.kubernetes.io/warn"    = "restricted"
    }
  }
}

resource "kubernetes_namespace_v1" "monitoring" {
  count = var.install.kube_prometheus_stack ? 1 : 0

  metadata {
    name = var.monitoring_namespace
    # node-exporter needs host namespaces: privileged is the only level it passes.
    labels = { "pod-security.kubernetes.io/enforce" = "privileged" }
  }
}
