# Every input of a deployment. Each has an example in terraform.tfvars.example; deploying to a
# new account needs variables only, never a code edit.

variable "region" {
  type        = string
  description = "AWS region of the deployment (the Glue jobs, buckets and Lambda), e.g. eu-west-1."

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "name_prefix" {
  type        = string
  description = "Prefix of every resource name (jobs are <name_prefix>-<job>, buckets <name_prefix>-<purpose>-<account>-<region>): lower-case letters, digits and hyphens, 3-20 characters."
  default     = "glue-replay"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-20 lower-case letters, digits or hyphens, starting with a letter and not ending with a hyphen (it is part of S3 bucket names)."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags applied to every resource (provider default_tags)."
  default     = {}
}

variable "source_url" {
  type        = string
  description = "Base URL of the source REST API the ingest job reads (--source_url); no credentials in it: the token is in the Secrets Manager secret."

  validation {
    condition     = can(regex("^https?://[^/@\\s]+", var.source_url))
    error_message = "source_url must be an http(s) URL without user info, e.g. https://api.example.com."
  }
}

variable "warehouse_prefix" {
  type        = string
  description = "Key prefix of the Delta tables in the warehouse bucket (no slashes at either end): the jobs' --warehouse is s3://<bucket>/<warehouse_prefix>."
  default     = "warehouse"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$", var.warehouse_prefix))
    error_message = "warehouse_prefix must be a key prefix without leading or trailing slash, e.g. warehouse or data/glue-replay."
  }
}

variable "uploads_prefix" {
  type        = string
  description = "Key prefix (no slashes at either end) under which the replay trigger uploads id files for --ids_file."
  default     = "ids"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$", var.uploads_prefix))
    error_message = "uploads_prefix must be a key prefix without leading or trailing slash, e.g. ids."
  }
}

variable "uploads_expiration_days" {
  type        = number
  description = "Days after which an uploaded id file is deleted (a replay's ids stay in its ledger row, capped at 20)."
  default     = 30

  validation {
    condition     = var.uploads_expiration_days >= 1 && floor(var.uploads_expiration_days) == var.uploads_expiration_days
    error_message = "uploads_expiration_days must be a whole number of days, at least 1."
  }
}

variable "noncurrent_version_expiration_days" {
  type        = number
  description = "Days an overwritten or deleted S3 object version (a VACUUMed Delta file, a previous wheel) stays recoverable."
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1 && floor(var.noncurrent_version_expiration_days) == var.noncurrent_version_expiration_days
    error_message = "noncurrent_version_expiration_days must be a whole number of days, at least 1."
  }
}

variable "access_log_expiration_days" {
  type        = number
  description = "Days the S3 server access logs of the buckets are kept."
  default     = 365

  validation {
    condition     = var.access_log_expiration_days >= 1 && floor(var.access_log_expiration_days) == var.access_log_expiration_days
    error_message = "access_log_expiration_days must be a whole number of days, at least 1."
  }
}

variable "force_destroy" {
  type        = bool
  description = "Let `terraform destroy` delete the buckets with everything in them (tables included). Only for throwaway deployments."
  default     = false
}

variable "bau_schedule" {
  type        = string
  description = "When the business-as-usual (BAU) run starts: a Glue cron expression in UTC."
  default     = "cron(0 * * * ? *)"

  validation {
    condition     = can(regex("^cron\\(\\S+ \\S+ \\S+ \\S+ \\S+ \\S+\\)$", var.bau_schedule))
    error_message = "bau_schedule must be a six-field Glue cron expression, e.g. cron(0 * * * ? *) for every hour."
  }
}

variable "enable_bau_schedule" {
  type        = bool
  description = "Whether the BAU schedule is active. Replays work either way."
  default     = true
}

variable "worker_type" {
  type        = string
  description = "Glue worker type of the jobs."
  default     = "G.1X"

  validation {
    condition     = contains(["G.1X", "G.2X", "G.4X", "G.8X", "G.12X", "G.16X", "R.1X", "R.2X", "R.4X", "R.8X"], var.worker_type)
    error_message = "worker_type must be one of G.1X, G.2X, G.4X, G.8X, G.12X, G.16X, R.1X, R.2X, R.4X, R.8X."
  }
}

variable "number_of_workers" {
  type        = number
  description = "Number of Glue workers per job run (the driver is one of them)."
  default     = 2

  validation {
    condition     = var.number_of_workers >= 2 && floor(var.number_of_workers) == var.number_of_workers
    error_message = "number_of_workers must be a whole number, at least 2."
  }
}

variable "job_timeout_minutes" {
  type        = number
  description = "Minutes after which Glue stops a job run (state TIMEOUT, reported to the alerts topic)."
  default     = 120

  validation {
    condition     = var.job_timeout_minutes >= 1 && var.job_timeout_minutes <= 10080 && floor(var.job_timeout_minutes) == var.job_timeout_minutes
    error_message = "job_timeout_minutes must be a whole number between 1 and 10080 (7 days)."
  }
}

variable "max_retries" {
  type        = number
  description = "Times Glue retries a failed job run. A retry continues the same request (same request id), so it writes nothing twice."
  default     = 1

  validation {
    condition     = var.max_retries >= 0 && var.max_retries <= 10 && floor(var.max_retries) == var.max_retries
    error_message = "max_retries must be a whole number between 0 and 10."
  }
}

variable "alarm_email" {
  type        = string
  description = "E-mail address that receives failed job runs and trigger failures (it must confirm the subscription), or null for none."
  default     = null

  validation {
    condition     = var.alarm_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarm_email))
    error_message = "alarm_email must be an e-mail address or null."
  }
}

variable "enable_dynamodb_log_store" {
  type        = bool
  description = "Create a DynamoDB table and configure Delta's S3DynamoDBLogStore, which makes concurrent writers to one table safe. Off by default: the jobs run one at a time (max_concurrent_runs = 1), which Delta's default S3 log store supports."
  default     = false
}

variable "dynamodb_log_store_deletion_protection" {
  type        = bool
  description = "Refuse to delete the log-store table (when enable_dynamodb_log_store is true); set false before `terraform destroy`."
  default     = true
}

variable "dynamodb_log_store_jar_file" {
  type        = string
  description = "The io.delta:delta-storage-s3-dynamodb jar (same Delta version as Glue's, 3.3.2) relative to the repository root; uploaded and passed as --extra-jars only when enable_dynamodb_log_store is true."
  default     = "dist/delta-storage-s3-dynamodb-3.3.2.jar"

  validation {
    condition     = can(regex("\\.jar$", var.dynamodb_log_store_jar_file))
    error_message = "dynamodb_log_store_jar_file must name a .jar file."
  }
}

variable "repo_root" {
  type        = string
  description = "Path of the glue-replay repository root, where glue_jobs/ and dist/ are; null means the parent of this terraform/ directory."
  default     = null
}

variable "wheel_file" {
  type        = string
  description = "The library wheel built by `make package`, relative to the repository root; the jobs install it with --additional-python-modules."
  default     = "dist/glue_replay-0.1.0-py3-none-any.whl"

  validation {
    condition     = can(regex("^[^/].*\\.whl$", var.wheel_file))
    error_message = "wheel_file must be a relative path to a .whl file, e.g. dist/glue_replay-0.1.0-py3-none-any.whl."
  }
}

variable "lambda_zip_file" {
  type        = string
  description = "The replay Lambda's package built by `make package`, relative to the repository root."
  default     = "dist/glue_replay_lambda.zip"

  validation {
    condition     = can(regex("^[^/].*\\.zip$", var.lambda_zip_file))
    error_message = "lambda_zip_file must be a relative path to a .zip file, e.g. dist/glue_replay_lambda.zip."
  }
}

variable "lambda_reserved_concurrency" {
  type        = number
  description = "Concurrent executions reserved for the replay Lambda, which also caps it; -1 reserves none. New accounts whose Lambda concurrency quota is 10 cannot reserve any (AWS keeps 10 unreserved): use -1 there."
  default     = 2

  validation {
    condition     = var.lambda_reserved_concurrency == -1 || (var.lambda_reserved_concurrency >= 1 && floor(var.lambda_reserved_concurrency) == var.lambda_reserved_concurrency)
    error_message = "lambda_reserved_concurrency must be -1 (none) or a whole number of at least 1."
  }
}

variable "log_retention_days" {
  type        = number
  description = "Days the replay Lambda's CloudWatch logs are kept."
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "kms_deletion_window_days" {
  type        = number
  description = "Days the KMS key stays recoverable after `terraform destroy` schedules its deletion (7-30)."
  default     = 30

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30
    error_message = "kms_deletion_window_days must be between 7 and 30."
  }
}

variable "secret_recovery_window_days" {
  type        = number
  description = "Days a deleted source-token secret can be restored: 0 deletes it at once, else 7-30."
  default     = 30

  validation {
    condition     = var.secret_recovery_window_days == 0 || (var.secret_recovery_window_days >= 7 && var.secret_recovery_window_days <= 30)
    error_message = "secret_recovery_window_days must be 0 or between 7 and 30."
  }
}
