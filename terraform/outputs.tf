output "cli_config" {
  description = "What the glue-replay CLI needs to start replays on this deployment: `terraform output -json cli_config > glue-replay.json`."
  value = {
    workflow_name     = module.glue.workflow_names["replay"]
    bau_workflow_name = module.glue.workflow_names["bau"]
    ingest_job        = module.glue.job_names["ingest_rest_api"]
    normalize_job     = module.glue.job_names["normalize"]
    uploads_uri       = local.uploads_uri
    uploads_kms_key   = module.kms.key_arn
    warehouse         = local.warehouse_uri
    region            = var.region
  }
}

output "job_names" {
  description = "Job key => Glue job name."
  value       = module.glue.job_names
}

output "workflow_names" {
  description = "Glue workflow names: bau (scheduled) and replay (started per request)."
  value       = module.glue.workflow_names
}

output "replay_workflow_name" {
  description = "Name of the Glue workflow a replay request starts."
  value       = module.glue.workflow_names["replay"]
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

output "source_token_secret_arn" {
  description = "ARN of the source API token secret; put its value with `aws secretsmanager put-secret-value`."
  value       = module.secrets.secret_arn
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
