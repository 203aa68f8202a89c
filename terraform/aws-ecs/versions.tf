terraform {
  # 1.3: lifecycle preconditions and the validation functions used here.
  required_version = ">= 1.3.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 6.x: data.aws_region.current.region (5.x only has .name). Commit .terraform.lock.hcl for exact pins.
      version = ">= 6.0.0, < 7.0.0"
    }
  }
}
