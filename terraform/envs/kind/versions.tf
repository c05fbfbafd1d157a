terraform {
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = ">= 2.31.0, < 4.0.0"
    }
    helm = {
      source  = "hashicorp/helm"
      version = ">= 3.0.0, < 4.0.0"
    }
  }
}

# Both read the kubeconfig kind writes. scripts/infra.sh applies module.cluster first, so the
# file exists before anything uses these providers.
provider "kubernetes" {
  config_path    = module.cluster.kubeconfig_path
  config_context = module.cluster.kube_context
}

provider "helm" {
  kubernetes = {
    config_path    = module.cluster.kubeconfig_path
    config_context = module.cluster.kube_context
  }
}
