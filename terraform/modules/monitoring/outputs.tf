output "topic_arn" {
  description = "ARN of the SNS topic that receives failed job runs and Lambda failures."
  value       = aws_sns_topic.alerts.arn
}

output "glue_job_failed_rule_name" {
  description = "Name of the EventBridge rule matching failed Glue job runs."
  value       = aws_cloudwatch_event_rule.glue_job_failed.name
}
