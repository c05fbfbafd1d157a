# Pure: no provider and no resource. It turns the platform's variables into the Shipyard chart's
# values, so the result can be computed (and checked against the chart with helm) offline.
terraform {
  required_version = ">= 1.7.0, < 2.0.0"
}
