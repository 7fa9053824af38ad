variable "name_prefix" {
  type        = string
  description = "Prefix of the topic, rule and alarm names."
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the KMS key that encrypts the SNS topic."
}

variable "job_names" {
  type        = list(string)
  description = "Names of the Glue jobs whose failed runs are reported."
}

variable "lambda_function_name" {
  type        = string
  description = "Name of the replay Lambda whose errors are reported."
}

variable "lambda_dlq_name" {
  type        = string
  description = "Name of the replay Lambda's dead-letter queue."
}

variable "alarm_email" {
  type        = string
  description = "Address subscribed to the alerts topic (it must confirm the subscription), or null for none."
  default     = null
}
