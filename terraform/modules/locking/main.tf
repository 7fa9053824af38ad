# The DynamoDB table of Delta's S3DynamoDBLogStore: with it, Delta commits to S3 are
# put-if-absent across Spark drivers, so more than one writer per table is safe. Without it
# (the default) glue-replay relies on one writer per table: max_concurrent_runs = 1 per job.
# Schema as the Delta docs give it; expireTime lets DynamoDB drop entries of old commits.

resource "aws_dynamodb_table" "log_store" {
  name                        = var.table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "tablePath"
  range_key                   = "fileName"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "tablePath"
    type = "S"
  }

  attribute {
    name = "fileName"
    type = "S"
  }

  ttl {
    attribute_name = "expireTime"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }
}
