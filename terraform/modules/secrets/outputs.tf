output "secret_arn" {
  description = "ARN of the source token secret (the ingest job's --source_token_secret)."
  value       = aws_secretsmanager_secret.source_token.arn
}

output "secret_name" {
  description = "Name of the source token secret."
  value       = aws_secretsmanager_secret.source_token.name
}
