terraform {
  # 1.3: lifecycle preconditions and the validation functions used here.
  required_version = ">= 1.3.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.x and 6.x: only attributes both majors have (data.aws_region.current.id, aws_eip.domain).
      # Commit .terraform.lock.hcl for exact pins.
      version = ">= 5.0.0, < 7.0.0"
    }
  }
}
