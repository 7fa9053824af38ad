variable "bucket" {
  type        = string
  description = "Name of the artifacts bucket the files are uploaded to."
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the KMS key every uploaded object is encrypted with."
}

variable "repo_root" {
  type        = string
  description = "Path of the glue-replay repository root; every file below is relative to it."
}

variable "jobs" {
  type = map(object({
    script = string
  }))
  description = "The Glue jobs by key; each job's script (relative to repo_root, e.g. glue_jobs/normalize_customers.py) is uploaded under that same key."
}

variable "wheel_file" {
  type        = string
  description = "The library wheel built by `make package`, relative to repo_root."

  validation {
    condition     = can(regex("\\.whl$", var.wheel_file))
    error_message = "wheel_file must name a .whl file, e.g. dist/glue_replay-0.1.0-py3-none-any.whl."
  }
}

variable "lambda_zip_file" {
  type        = string
  description = "The replay Lambda's zip built by `make package`, relative to repo_root."

  validation {
    condition     = can(regex("\\.zip$", var.lambda_zip_file))
    error_message = "lambda_zip_file must name a .zip file, e.g. dist/glue_replay_lambda.zip."
  }
}

variable "extra_jar_files" {
  type        = list(string)
  description = "JVM jars the Glue jobs need beyond Glue's own (--extra-jars), relative to repo_root."
  default     = []
}
