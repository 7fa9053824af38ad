# One secret per pipeline whose source needs credentials: <name_prefix>-<entity>-source-token.
# Terraform creates the secret and never its value (a value in Terraform would sit in the state
# file): the operator puts it once with
#   aws secretsmanager put-secret-value --secret-id <arn> --secret-string '<token>'
# That pipeline's ingest job gets the secret's ARN as --source_token_secret and reads the value
# at run time; its role is the only one allowed to (modules/iam).

resource "aws_secretsmanager_secret" "source_token" {
  #checkov:skip=CKV2_AWS_57:The token is issued by the source system's owner; rotating it needs a rotation Lambda that speaks that system's API, which is outside this repository. Rotate by putting a new value: the next job run reads it.
  for_each = var.pipelines

  name                    = "${var.name_prefix}-${each.key}-source-token"
  description             = "Credentials of the ${each.key} pipeline's source, read by the ${var.name_prefix}-${each.key}-ingest Glue job (value put by the operator, not Terraform)."
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_days
}
