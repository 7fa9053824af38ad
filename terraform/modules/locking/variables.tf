variable "table_name" {
  type        = string
  description = "Name of the DynamoDB table (spark.io.delta.storage.S3DynamoDBLogStore.ddb.tableName)."
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the KMS key that encrypts the table."
}

variable "deletion_protection" {
  type        = bool
  description = "Refuse to delete the table (turn off before `terraform destroy`)."
  default     = true
}
