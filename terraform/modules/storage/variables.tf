variable "name_prefix" {
  type        = string
  description = "Prefix of the bucket names: <name_prefix>-<purpose>-<account id>-<region>."
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the KMS key that encrypts the warehouse, artifacts and uploads buckets by default."
}

variable "force_destroy" {
  type        = bool
  description = "Let `terraform destroy` delete non-empty buckets (their tables and artifacts with them). Keep false outside throwaway deployments."
  default     = false
}

variable "uploads_expiration_days" {
  type        = number
  description = "Days after which an uploaded id file (a targeted replay's --ids_file) is deleted."
  default     = 30

  validation {
    condition     = var.uploads_expiration_days >= 1
    error_message = "uploads_expiration_days must be at least 1."
  }
}

variable "noncurrent_version_expiration_days" {
  type        = number
  description = "Days a replaced or deleted object version (a VACUUMed Delta file, an old wheel) is kept before it expires."
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "noncurrent_version_expiration_days must be at least 1."
  }
}

variable "access_log_expiration_days" {
  type        = number
  description = "Days the S3 server access logs are kept."
  default     = 365

  validation {
    condition     = var.access_log_expiration_days >= 1
    error_message = "access_log_expiration_days must be at least 1."
  }
}

variable "abort_incomplete_multipart_days" {
  type        = number
  description = "Days after which an unfinished multipart upload is aborted and its parts deleted."
  default     = 7

  validation {
    condition     = var.abort_incomplete_multipart_days >= 1
    error_message = "abort_incomplete_multipart_days must be at least 1."
  }
}

variable "glue_temp_prefix" {
  type        = string
  description = "Key prefix (no slashes at either end) of Glue's --TempDir in the artifacts bucket."
  default     = "glue-temp"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$", var.glue_temp_prefix))
    error_message = "glue_temp_prefix must be a key prefix without leading or trailing slash, e.g. glue-temp."
  }
}

variable "glue_temp_expiration_days" {
  type        = number
  description = "Days after which Glue's temporary files under the --TempDir prefix are deleted."
  default     = 7

  validation {
    condition     = var.glue_temp_expiration_days >= 1
    error_message = "glue_temp_expiration_days must be at least 1."
  }
}
