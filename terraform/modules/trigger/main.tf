# The replay Lambda: validates a replay request (the CLI's fields and the entity, as a JSON
# event) exactly like the jobs, with the entity's id rule; uploads a long id list to the uploads
# bucket; and starts that pipeline's replay workflow with the request as run properties (or one
# job with StartJobRun). It holds no ingestion logic. Its environment says where each pipeline's
# jobs and workflows are (GLUE_REPLAY_PIPELINES, JSON), so it needs no code change per pipeline.

resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/lambda/${var.function_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_sqs_queue" "dlq" {
  name                              = var.dlq_name
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 3600
  message_retention_seconds         = 1209600 # 14 days, SQS's maximum
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_117:The function only calls AWS APIs (Glue, S3); in a VPC it would need NAT or three VPC endpoints to reach them and gains no private resource.
  #checkov:skip=CKV_AWS_272:The package is built by `make package` and uploaded by Terraform to a KMS-encrypted, versioned, TLS-only bucket whose writers are the deployers; AWS Signer signing is a per-organisation pipeline step this repository cannot perform.
  function_name = var.function_name
  description   = "glue-replay: validate a replay request and start the Glue jobs"
  role          = var.role_arn
  runtime       = "python3.11"
  handler       = "glue_replay.trigger.lambda_handler.handler"
  timeout       = var.timeout_seconds
  memory_size   = var.memory_mb

  s3_bucket         = var.package_bucket
  s3_key            = var.package_key
  s3_object_version = var.package_version

  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = var.kms_key_arn

  environment {
    variables = var.environment
  }

  tracing_config {
    mode = "Active"
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.dlq.arn
  }

  depends_on = [aws_cloudwatch_log_group.this]

  lifecycle {
    # AWS refuses more than 4 KB of environment variables with a message that does not say
    # why; GLUE_REPLAY_PIPELINES grows with every pipeline (about 300 bytes each).
    precondition {
      condition     = sum(concat([0], [for name, value in var.environment : length(name) + length(value)])) <= 4096
      error_message = "The Lambda's environment exceeds Lambda's 4 KB limit: fewer pipelines, shorter id_rule help texts, or a shorter name_prefix."
    }
  }
}
