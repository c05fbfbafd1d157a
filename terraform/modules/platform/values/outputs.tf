output "values" {
  description = "The Shipyard chart's values (an object)."
  value       = local.values
}

output "yaml" {
  description = "The same values as YAML, for helm_release or `helm template -f`."
  value       = yamlencode(local.values)
}

output "canary_in_progress" {
  description = "Whether any model has a canary (then the rollout analysis runs)."
  value       = local.canary_in_progress
}
