output "table_name" {
  description = "Name of the Delta log-store table."
  value       = aws_dynamodb_table.log_store.name
}

output "table_arn" {
  description = "ARN of the Delta log-store table."
  value       = aws_dynamodb_table.log_store.arn
}
