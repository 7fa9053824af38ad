output "job_names" {
  description = "Job key => Glue job name."
  value       = { for key, job in aws_glue_job.this : key => job.name }
}

output "job_arns" {
  description = "Job key => Glue job ARN."
  value       = { for key, job in aws_glue_job.this : key => job.arn }
}

output "workflow_names" {
  description = "Workflow key (bau, replay) => Glue workflow name."
  value       = { for key, workflow in aws_glue_workflow.this : key => workflow.name }
}

output "workflow_arns" {
  description = "Workflow key (bau, replay) => Glue workflow ARN."
  value       = { for key, workflow in aws_glue_workflow.this : key => workflow.arn }
}

output "security_configuration_name" {
  description = "Name of the Glue security configuration the jobs run with."
  value       = aws_glue_security_configuration.this.name
}
