output "warehouse_bucket" {
  description = "Name of the warehouse bucket (the Delta tables)."
  value       = aws_s3_bucket.data["warehouse"].id
}

output "warehouse_bucket_arn" {
  description = "ARN of the warehouse bucket."
  value       = aws_s3_bucket.data["warehouse"].arn
}

output "artifacts_bucket" {
  description = "Name of the artifacts bucket (job scripts, the wheel, the Lambda zip, Glue's --TempDir)."
  value       = aws_s3_bucket.data["artifacts"].id
}

output "artifacts_bucket_arn" {
  description = "ARN of the artifacts bucket."
  value       = aws_s3_bucket.data["artifacts"].arn
}

output "uploads_bucket" {
  description = "Name of the uploads bucket (id files of targeted replays)."
  value       = aws_s3_bucket.data["uploads"].id
}

output "uploads_bucket_arn" {
  description = "ARN of the uploads bucket."
  value       = aws_s3_bucket.data["uploads"].arn
}

output "access_logs_bucket" {
  description = "Name of the bucket that receives the other buckets' S3 server access logs."
  value       = aws_s3_bucket.access_logs.id
}

output "glue_temp_prefix" {
  description = "Key prefix of Glue's --TempDir in the artifacts bucket."
  value       = var.glue_temp_prefix
}
