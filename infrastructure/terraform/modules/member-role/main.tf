# The role pincher assumes in each member account for --all-accounts (aws.assume_role_name,
# default OrganizationAccountAccessRole; name this one e.g. pincher-reader and set
# aws.assume_role_name to it). It trusts only the role pincher runs as in the management
# account, and holds the same read-only (and optionally operator) permissions.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

variable "role_name" {
  description = "The role's name; set aws.assume_role_name to it."
  type        = string
  default     = "pincher-reader"
}

variable "pincher_role_arn" {
  description = "ARN of the role pincher runs as in the management account."
  type        = string
}

variable "operator" {
  description = "Also allow the stop/start actions in this account."
  type        = bool
  default     = false
}

data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = [var.pincher_role_arn]
    }
  }
}

resource "aws_iam_role" "pincher" {
  name                 = var.role_name
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "read_only" {
  name   = "pincher-read-only"
  role   = aws_iam_role.pincher.id
  policy = file("${path.module}/../../policies/read-only.json")
}

resource "aws_iam_role_policy" "operator" {
  count  = var.operator ? 1 : 0
  name   = "pincher-operator"
  role   = aws_iam_role.pincher.id
  policy = file("${path.module}/../../policies/operator.json")
}

output "role_arn" {
  value = aws_iam_role.pincher.arn
}
