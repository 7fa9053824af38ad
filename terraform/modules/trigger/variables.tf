variable "function_name" {
  type        = string
  description = "Name of the Lambda function."
}

variable "role_arn" {
  type        = string
  description = "ARN of the function's execution role."
}

variable "package_bucket" {
  type        = string
  description = "Bucket of the function's zip package."
}

variable "package_key" {
  type        = string
  description = "S3 key of the function's zip package."
}

variable "package_version" {
  type        = string
  description = "S3 version id of the package; a new version redeploys the function."
}

variable "environment" {
  type        = map(string)
  description = "The function's environment (GLUE_REPLAY_*): each pipeline's jobs, workflows and id rule as JSON, where uploads and the warehouse are; at most 4 KB in all."
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the KMS key for the environment, the log group and the dead-letter queue."
}

variable "dlq_name" {
  type        = string
  description = "Name of the SQS dead-letter queue of failed asynchronous invocations."
}

variable "timeout_seconds" {
  type        = number
  description = "Function timeout in seconds."
  default     = 60

  validation {
    condition     = var.timeout_seconds >= 1 && var.timeout_seconds <= 900
    error_message = "timeout_seconds must be between 1 and 900."
  }
}

variable "memory_mb" {
  type        = number
  description = "Function memory in MB."
  default     = 256

  validation {
    condition     = var.memory_mb >= 128 && var.memory_mb <= 10240
    error_message = "memory_mb must be between 128 and 10240."
  }
}

variable "reserved_concurrency" {
  type        = number
  description = "Concurrent executions reserved for (and capping) the function; -1 for none."
}

variable "log_retention_days" {
  type        = number
  description = "Days the function's logs are kept."
}
