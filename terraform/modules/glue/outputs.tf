output "job_names" {
  description = "Job key (<entity>-ingest, <entity>-normalize) => Glue job name."
  value       = { for key, job in aws_glue_job.this : key => job.name }
}

output "job_arns" {
  description = "Job key (<entity>-ingest, <entity>-normalize) => Glue job ARN."
  value       = { for key, job in aws_glue_job.this : key => job.arn }
}

output "publish_job_name" {
  description = "Name of the publish job (one for every pipeline)."
  value       = aws_glue_job.publish.name
}

output "publish_job_arn" {
  description = "ARN of the publish job."
  value       = aws_glue_job.publish.arn
}

output "workflow_names" {
  description = "Workflow key (<entity>-bau, <entity>-replay) => Glue workflow name."
  value       = { for key, workflow in aws_glue_workflow.this : key => workflow.name }
}

output "workflow_arns" {
  description = "Workflow key (<entity>-bau, <entity>-replay) => Glue workflow ARN."
  value       = { for key, workflow in aws_glue_workflow.this : key => workflow.arn }
}

output "pipelines" {
  description = "Entity => its jobs and workflows: {ingest_job, normalize_job, workflow_name (replay), bau_workflow_name}."
  value = {
    for entity in keys(var.pipelines) : entity => {
      ingest_job        = aws_glue_job.this["${entity}-ingest"].name
      normalize_job     = aws_glue_job.this["${entity}-normalize"].name
      workflow_name     = aws_glue_workflow.this["${entity}-replay"].name
      bau_workflow_name = aws_glue_workflow.this["${entity}-bau"].name
    }
  }
}

output "security_configuration_name" {
  description = "Name of the Glue security configuration the jobs run with."
  value       = aws_glue_security_configuration.this.name
}
