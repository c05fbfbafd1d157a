# The Shipyard chart from this repository, with values from ./values (GPU pool, canary, pools'
# node selectors, data services). `helm test shipyard -n <namespace>` then sends one prediction.
resource "helm_release" "shipyard" {
  name      = local.release
  namespace = kubernetes_namespace_v1.shipyard.metadata[0].name
  chart     = local.chart_path
  values    = [module.chart_values.yaml]
  wait      = true
  timeout   = 900

  depends_on = [
    helm_release.kube_prometheus_stack, # its CRDs first: the chart renders ServiceMonitors then
    helm_release.redis,
    helm_release.postgresql,
    kubernetes_persistent_volume_claim_v1.models,
  ]
}
