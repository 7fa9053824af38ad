variable "name_prefix" {
  type        = string
  description = "Prefix of the role names."
}

variable "jobs" {
  type = map(object({
    script             = string
    reads              = list(string)
    writes             = list(string)
    reads_source_token = bool
  }))
  description = "The Glue jobs by key: each job's script (key in the artifacts bucket), the warehouse tables it only reads and those it writes (top-level folders under the warehouse prefix, e.g. raw), and whether it reads the source token secret."
}

variable "job_arns" {
  type        = map(string)
  description = "Job key => ARN of the Glue job; the Lambda may start and inspect exactly these."
}

variable "workflow_arns" {
  type        = map(string)
  description = "Workflow key => ARN of the Glue workflow; the jobs read these workflows' run properties."
}

variable "replay_workflow_key" {
  type        = string
  description = "Key in workflow_arns of the workflow the Lambda starts for a replay request."
  default     = "replay"
}

variable "warehouse_bucket_arn" {
  type        = string
  description = "ARN of the warehouse bucket."
}

variable "warehouse_prefix" {
  type        = string
  description = "Key prefix of the warehouse in its bucket (no slashes at either end)."
}

variable "artifacts_bucket_arn" {
  type        = string
  description = "ARN of the artifacts bucket."
}

variable "wheel_key" {
  type        = string
  description = "S3 key of the library wheel in the artifacts bucket."
}

variable "extra_jar_keys" {
  type        = list(string)
  description = "S3 keys of the extra jars the jobs load (--extra-jars)."
  default     = []
}

variable "glue_temp_prefix" {
  type        = string
  description = "Key prefix of Glue's --TempDir in the artifacts bucket."
}

variable "uploads_bucket_arn" {
  type        = string
  description = "ARN of the uploads bucket."
}

variable "uploads_prefix" {
  type        = string
  description = "Key prefix of the uploaded id files in the uploads bucket."
}

variable "source_token_secret_arn" {
  type        = string
  description = "ARN of the Secrets Manager secret holding the source API token."
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the KMS key that encrypts the buckets, secret, logs and queue."
}

variable "dynamodb_log_store_table_arn" {
  type        = string
  description = "ARN of the DynamoDB table of Delta's S3DynamoDBLogStore, or null when it is not enabled."
  default     = null
}

variable "lambda_function_name" {
  type        = string
  description = "Name of the replay Lambda (its log group is /aws/lambda/<name>)."
}

variable "lambda_dlq_name" {
  type        = string
  description = "Name of the Lambda's SQS dead-letter queue."
}
