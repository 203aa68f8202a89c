terraform {
  required_version = ">= 1.3.0"

  required_providers {
    google = {
      source = "hashicorp/google"
      # Commit .terraform.lock.hcl for exact pins.
      version = ">= 6.0.0, < 8.0.0"
    }
  }
}
