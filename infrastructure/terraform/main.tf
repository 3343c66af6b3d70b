# Least-privilege IAM for pincher, in the account it runs in (the management account for
# --all-accounts): a read-only policy for reports, an operator policy for the stop/start
# actions, and, when backups go to S3, a policy scoped to the bucket and prefix. Attach them to
# the role pincher runs as (IRSA, an instance profile, or a user for local use).
#
# The action lists come from the JSON files under policies/, which a test checks against the
# calls the code makes (src/plugins/aws/permissions.rs). Member accounts get a role of their
# own from modules/member-role.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

variable "name_prefix" {
  description = "Prefix of the policy names."
  type        = string
  default     = "pincher"
}

variable "operator" {
  description = "Create the operator policy (the stop/start actions)."
  type        = bool
  default     = false
}

variable "backups_bucket" {
  description = "The S3 bucket of the backup store (backups.s3_bucket); empty for none."
  type        = string
  default     = ""
}

variable "backups_prefix" {
  description = "The key prefix of the backup store (backups.s3_prefix), ending with /."
  type        = string
  default     = ""
}

variable "member_role_name" {
  description = "The role pincher assumes in member accounts (aws.assume_role_name, modules/member-role); empty when it reads one account only."
  type        = string
  default     = ""
}

resource "aws_iam_policy" "read_only" {
  name        = "${var.name_prefix}-read-only"
  description = "pincher reports: EC2, RDS, Lambda, Organizations and Cost Explorer reads."
  policy      = file("${path.module}/policies/read-only.json")
}

resource "aws_iam_policy" "operator" {
  count       = var.operator ? 1 : 0
  name        = "${var.name_prefix}-operator"
  description = "pincher stop/start actions on EC2 instances and RDS DB instances not tagged pincher:protect=true."
  policy      = file("${path.module}/policies/operator.json")
}

resource "aws_iam_policy" "backups" {
  count       = var.backups_bucket == "" ? 0 : 1
  name        = "${var.name_prefix}-backups-s3"
  description = "pincher's Ops Manager backup store in s3://${var.backups_bucket}/${var.backups_prefix}."
  policy = templatefile("${path.module}/policies/backups-s3.json.tftpl", {
    bucket = var.backups_bucket
    prefix = var.backups_prefix
  })
}

resource "aws_iam_policy" "assume_members" {
  count       = var.member_role_name == "" ? 0 : 1
  name        = "${var.name_prefix}-assume-members"
  description = "pincher --all-accounts: assume ${var.member_role_name} in the member accounts."
  policy = templatefile("${path.module}/policies/assume-members.json.tftpl", {
    role_name = var.member_role_name
  })
}

output "read_only_policy_arn" {
  value = aws_iam_policy.read_only.arn
}

output "operator_policy_arn" {
  value = var.operator ? aws_iam_policy.operator[0].arn : null
}

output "backups_policy_arn" {
  value = var.backups_bucket == "" ? null : aws_iam_policy.backups[0].arn
}

output "assume_members_policy_arn" {
  value = var.member_role_name == "" ? null : aws_iam_policy.assume_members[0].arn
}
