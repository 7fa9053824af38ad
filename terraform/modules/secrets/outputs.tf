output "secret_arns" {
  description = "Entity => ARN of its source token secret (its ingest job's --source_token_secret)."
  value       = { for entity, secret in aws_secretsmanager_secret.source_token : entity => secret.arn }
}

output "secret_names" {
  description = "Entity => name of its source token secret."
  value       = { for entity, secret in aws_secretsmanager_secret.source_token : entity => secret.name }
}
