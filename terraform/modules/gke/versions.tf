terraform {
  # Cross-variable validation needs OpenTofu or Terraform >= 1.9.
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 7.0.0, < 9.0.0"
    }
  }
}
