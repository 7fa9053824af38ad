terraform {
  required_version = ">= 1.9" # variable validations that refer to other variables

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # What the tests validate, plan and apply with (5.100.0, the last 5.x): the variables'
      # validations accept what this provider accepts (e.g. its Glue worker types).
      version = "~> 5.100"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = var.tags
  }
}
