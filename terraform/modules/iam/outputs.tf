output "glue_role_arns" {
  description = "Job key => ARN of the job's IAM role (available once its policy is attached)."
  value       = { for key, role in aws_iam_role.glue : key => role.arn }

  # A job must not start before its role can do its work.
  depends_on = [aws_iam_role_policy.glue]
}

output "publish_role_arn" {
  description = "ARN of the publish job's IAM role (available once its policy is attached)."
  value       = aws_iam_role.publish.arn

  depends_on = [aws_iam_role_policy.publish]
}

output "lambda_role_arn" {
  description = "ARN of the replay Lambda's IAM role (available once its policy is attached: Lambda checks the dead-letter permission at creation)."
  value       = aws_iam_role.lambda.arn

  depends_on = [aws_iam_role_policy.lambda]
}
