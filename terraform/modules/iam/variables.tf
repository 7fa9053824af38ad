variable "name_prefix" {
  type        = string
  description = "Prefix of the role names."
}

variable "jobs" {
  type = map(object({
    entity             = string
    script             = string
    reads              = list(string)
    writes             = list(string)
    reads_source_token = bool
  }))
  description = "The Glue jobs by key (<entity>-ingest, <entity>-normalize; the role is named <name_prefix>-<key>): the pipeline's entity, the job's script (key in the artifacts bucket), the warehouse tables it only reads and those it writes (paths under the warehouse prefix, e.g. raw/customers or runs/ingest/customers), and whether it reads its pipeline's source token secret."

  validation {
    condition = alltrue(flatten([
      for job in var.jobs : [for table in concat(job.reads, job.writes) : can(regex("^[a-z][a-z0-9_]*(/[a-z][a-z0-9_]*){0,2}$", table))]
    ]))
    error_message = "A table is a path such as raw/customers or runs/ingest/customers: at most three lower-case segments, no leading or trailing slash, no wildcard."
  }
}

variable "job_names" {
  type        = map(string)
  description = "Job key => name of the Glue job; the Lambda may start and inspect exactly these."
}

variable "workflow_names" {
  type = map(object({
    bau    = string
    replay = string
  }))
  description = "Entity => names of its BAU and replay workflows: a job reads its own pipeline's workflows' run properties; the Lambda starts the replay workflows and inspects all of them."
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

variable "source_token_secret_arns" {
  type        = map(string)
  description = "Entity => ARN of its source token secret, for the pipelines that have one; only that pipeline's ingest job may read it."
  default     = {}
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the KMS key that encrypts the buckets, secrets, logs and queue."
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

variable "publish_script" {
  type        = string
  description = "Key of the publish job's script in the artifacts bucket."
}

variable "publish_sinks" {
  type        = list(string)
  description = "The sink URIs the publish job sends to (kinesis:<stream ARN>, sqs:<queue ARN>, sns:<topic ARN>, eventbridge:<bus ARN>, kafka:<brokers>/<topic>, file:s3://<bucket>/<prefix>): its role may send to exactly these."

  validation {
    condition     = alltrue([for uri in var.publish_sinks : can(regex("^(kinesis|sqs|sns|eventbridge):arn:|^kafka:|^file:s3://[^/]+/[^/]", uri))])
    error_message = "A sink is kinesis:, sqs:, sns: or eventbridge: and an ARN, kafka:<brokers>/<topic>, or file:s3://<bucket>/<prefix>."
  }
}

variable "publish_sink_kms_key_arns" {
  type        = list(string)
  description = "ARNs of the customer-managed KMS keys the sinks are encrypted with (kms:GenerateDataKey and kms:Decrypt); empty for none."
  default     = []
}
