variable "name_prefix" {
  type        = string
  description = "Prefix of the job, workflow, trigger and security configuration names: <name_prefix>-<entity>-ingest, <name_prefix>-<entity>-bau, ..."
}

variable "pipelines" {
  type = map(object({
    description = string
    ingest = object({
      script   = string
      settings = map(string)
    })
    normalize = object({
      script   = string
      settings = map(string)
    })
  }))
  description = "The pipelines by entity name: what each moves (for descriptions) and, for its ingest and its normalize job, the script's key in the artifacts bucket (glue_jobs/<name>.py) and the job's deployment settings (non-overridable arguments such as --warehouse)."

  validation {
    condition     = length(var.pipelines) >= 1
    error_message = "At least one pipeline is needed."
  }
}

variable "role_arns" {
  type        = map(string)
  description = "Job key (<entity>-ingest, <entity>-normalize) => ARN of the IAM role the job runs as."
}

variable "artifacts_bucket" {
  type        = string
  description = "Name of the artifacts bucket holding the scripts."
}

variable "wheel_uri" {
  type        = string
  description = "s3:// URI of the library wheel (--additional-python-modules)."
}

variable "extra_jar_uris" {
  type        = list(string)
  description = "s3:// URIs of extra JVM jars (--extra-jars); empty for none."
  default     = []
}

variable "temp_dir_uri" {
  type        = string
  description = "s3:// URI of Glue's --TempDir, ending with a slash."
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the KMS key of the Glue security configuration (S3 writes, CloudWatch logs, job bookmarks)."
}

variable "worker_type" {
  type        = string
  description = "Glue worker type of every job (G.1X, G.2X, ...)."
}

variable "number_of_workers" {
  type        = number
  description = "Number of Glue workers of every job (at least 2: a driver and an executor)."
}

variable "timeout_minutes" {
  type        = number
  description = "A job run stops (state TIMEOUT) after this many minutes."
}

variable "max_retries" {
  type        = number
  description = "Times Glue retries a failed job run; a retry keeps the request id, so it is idempotent."
}

variable "bau_schedule" {
  type        = string
  description = "Cron expression of the BAU workflow's start trigger, e.g. cron(0 * * * ? *)."
}

variable "enable_bau_schedule" {
  type        = bool
  description = "Whether the BAU schedule is active."
}

variable "maintenance_schedule" {
  type        = string
  description = "Cron expression of the scheduled maintenance runs of every ingest and normalize job."
}

variable "enable_maintenance_schedule" {
  type        = bool
  description = "Whether the maintenance schedule is active."
}

variable "maintenance_vacuum_retention_days" {
  type        = number
  description = "VACUUM retention of a maintenance run in days (--vacuum_retention_days), or null for no VACUUM."
}

variable "delta_log_store" {
  type = object({
    table_name = string
    region     = string
  })
  description = "The DynamoDB table of Delta's S3DynamoDBLogStore (multi-writer commits), or null for Delta's default single-driver S3 log store."
  default     = null
}

variable "publish_script" {
  type        = string
  description = "Key of the publish job's script in the artifacts bucket (glue_jobs/publish_outbox.py)."
}

variable "publish_role_arn" {
  type        = string
  description = "ARN of the IAM role the publish job runs as."
}

variable "publish_settings" {
  type        = map(string)
  description = "The publish job's deployment settings, non-overridable arguments by name (--warehouse)."
}

variable "publish_arguments" {
  type        = map(string)
  description = "The publish job's deployment defaults, default arguments a run may override: --sink, --entity_sinks (JSON), --fail_on_dead_letter."
}

variable "publish_schedule" {
  type        = string
  description = "Cron expression of the publish job's scheduled trigger, e.g. cron(0/15 * * * ? *)."
}

variable "enable_publish_schedule" {
  type        = bool
  description = "Whether the publish job's schedule is active (the cascades after normalize run either way)."
}
