# No provider: the cluster is made by the kind CLI through the built-in terraform_data resource,
# because no kind provider is served by the registries this project can reach.
terraform {
  required_version = ">= 1.7.0, < 2.0.0"
}
