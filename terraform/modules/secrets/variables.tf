variable "name_prefix" {
  type        = string
  description = "Prefix of the secrets' names: <name_prefix>-<entity>-source-token."
}

variable "pipelines" {
  type        = set(string)
  description = "Entity names of the pipelines whose ingest job reads a source token secret; one secret each."
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the KMS key that encrypts the secrets."
}

variable "recovery_window_days" {
  type        = number
  description = "Days a deleted secret can be restored (0 deletes at once, else 7-30)."
  default     = 30

  validation {
    condition     = var.recovery_window_days == 0 || (var.recovery_window_days >= 7 && var.recovery_window_days <= 30)
    error_message = "recovery_window_days must be 0 or between 7 and 30."
  }
}
