terraform {
  # 1.9+ for variable validations that refer to other variables.
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40, < 7.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}

# AWS publishes billing metrics (AWS/Billing EstimatedCharges) in us-east-1 only, and an
# alarm can only notify an SNS topic in its own region: both live behind this alias.
provider "aws" {
  alias  = "us_east_1"
  region = "us-east-1"

  default_tags {
    tags = local.tags
  }
}
