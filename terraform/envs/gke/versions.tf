terraform {
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 7.0.0, < 9.0.0"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = ">= 2.31.0, < 4.0.0"
    }
    helm = {
      source  = "hashicorp/helm"
      version = ">= 3.0.0, < 4.0.0"
    }
  }

  # State is local by default. For a team, keep it in GCS: create a versioned bucket, then
  # `tofu init -backend-config=bucket=<bucket>` after replacing this comment with
  #   backend "gcs" { prefix = "shipyard/gke" }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

# Both read the kubeconfig `gcloud container clusters get-credentials` writes (scripts/infra.sh
# does it after applying module.gke), authenticating through gke-gcloud-auth-plugin.
provider "kubernetes" {
  config_path    = local.kubeconfig_path
  config_context = module.gke.kube_context
}

provider "helm" {
  kubernetes = {
    config_path    = local.kubeconfig_path
    config_context = module.gke.kube_context
  }
}
