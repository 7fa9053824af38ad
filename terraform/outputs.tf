output "cli_config" {
  description = "What the glue-replay CLI needs to start replays on this deployment: `terraform output -json cli_config > glue-replay.json`. Its pipelines are the Lambda's GLUE_REPLAY_PIPELINES; publish_job is the publisher's Glue job."
  value = {
    region          = var.region
    warehouse       = local.warehouse_uri
    uploads_uri     = local.uploads_uri
    uploads_kms_key = module.kms.key_arn
    pipelines       = local.trigger_pipelines
    publish_job     = module.glue.publish_job_name
  }
}

output "pipelines" {
  description = "Entity => its Glue jobs and workflows: {ingest_job, normalize_job, workflow_name (replay, on demand), bau_workflow_name (scheduled)}."
  value       = module.glue.pipelines
}

output "job_names" {
  description = "Job key (<entity>-ingest, <entity>-normalize) => Glue job name."
  value       = module.glue.job_names
}

output "publish_job_name" {
  description = "Name of the publish job (<name_prefix>-publish), which sends every pipeline's outbox to its sink."
  value       = module.glue.publish_job_name
}

output "workflow_names" {
  description = "Workflow key (<entity>-bau scheduled, <entity>-replay started per request) => Glue workflow name."
  value       = module.glue.workflow_names
}

output "warehouse_uri" {
  description = "Base URI of every Delta table (the jobs' --warehouse)."
  value       = local.warehouse_uri
}

output "uploads_uri" {
  description = "Where id files of targeted replays are uploaded (--ids_file s3://...)."
  value       = local.uploads_uri
}

output "buckets" {
  description = "Bucket names by purpose: warehouse, artifacts, uploads, access_logs."
  value = {
    warehouse   = module.storage.warehouse_bucket
    artifacts   = module.storage.artifacts_bucket
    uploads     = module.storage.uploads_bucket
    access_logs = module.storage.access_logs_bucket
  }
}

output "lambda_function_name" {
  description = "Name of the replay Lambda."
  value       = module.trigger.function_name
}

output "lambda_function_arn" {
  description = "ARN of the replay Lambda."
  value       = module.trigger.function_arn
}

output "source_token_secret_arns" {
  description = "Entity => ARN of its source token secret (pipelines with reads_source_token = true); put each value with `aws secretsmanager put-secret-value`."
  value       = module.secrets.secret_arns
}

output "alerts_topic_arn" {
  description = "ARN of the SNS topic that receives failed job runs and replay-trigger failures."
  value       = module.monitoring.topic_arn
}

output "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the deployment's data; operators who read the tables need kms:Decrypt on it."
  value       = module.kms.key_arn
}

output "dynamodb_log_store_table" {
  description = "Name of the Delta S3DynamoDBLogStore table, or null when enable_dynamodb_log_store is false."
  value       = one(module.locking[*].table_name)
}
