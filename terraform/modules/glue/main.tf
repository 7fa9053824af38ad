# The Glue jobs (one per entry of var.jobs: adding a job is adding an entry) and the two
# workflows that run them as a cascade, each job after the one it `starts_after`:
#
#   <prefix>-bau     SCHEDULED start trigger (var.bau_schedule) -> first job -> ... : the
#                    business-as-usual run. It has no run properties, so every job runs BAU.
#   <prefix>-replay  ON_DEMAND start trigger -> first job -> ... : a replay request.
#
# A replay request travels as the replay workflow run's properties: the CLI or the Lambda calls
# StartWorkflowRun(Name, RunProperties={"replay_mode": ..., "date": ..., "ids_file": ...,
# "request_id": ...}), and every job of that run reads them with GetWorkflowRunProperties
# (a job started by a trigger receives --WORKFLOW_NAME and --WORKFLOW_RUN_ID). So the request
# reaches ingest and normalize alike, and trigger actions carry no replay arguments: they are
# fixed at deploy time and could not carry a per-request value. A single stage is started
# directly with StartJobRun and the request as --arguments (the replay arguments below are
# overridable per run for exactly that).
#
# Two workflows and not one: a workflow has one start trigger, and a SCHEDULED trigger is not
# what StartWorkflowRun fires on demand. Both share the jobs; each job runs one at a time
# (max_concurrent_runs = 1: Delta on S3 is single-writer), so a replay that meets a running BAU
# run is refused as busy (ConcurrentRunsExceededException) instead of racing it.

locals {
  # Replay arguments (DESIGN §4) with neutral defaults: overridable per run.
  replay_arguments = {
    "--replay_mode"  = ""
    "--date"         = ""
    "--until"        = ""
    "--ids"          = ""
    "--ids_file"     = ""
    "--request_id"   = ""
    "--dry_run"      = "false"
    "--requested_by" = ""
  }

  # Glue's own job parameters: overridable per run like any default argument.
  glue_arguments = {
    "--job-language"                     = "python"
    "--enable-metrics"                   = "true"
    "--enable-continuous-cloudwatch-log" = "true"
    "--job-bookmark-option"              = "job-bookmark-disable"
    "--TempDir"                          = var.temp_dir_uri
  }

  delta_conf = join(" --conf ", concat(
    [
      "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
      "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog",
    ],
    var.delta_log_store == null ? [] : [
      "spark.delta.logStore.s3.impl=io.delta.storage.S3DynamoDBLogStore",
      "spark.io.delta.storage.S3DynamoDBLogStore.ddb.tableName=${var.delta_log_store.table_name}",
      "spark.io.delta.storage.S3DynamoDBLogStore.ddb.region=${var.delta_log_store.region}",
    ],
  ))

  # The runtime every job needs (Delta, the library): not overridable per run.
  runtime_arguments = {
    "--datalake-formats"          = "delta"
    "--conf"                      = local.delta_conf
    "--additional-python-modules" = var.wheel_uri
  }

  extra_jar_arguments = length(var.extra_jar_uris) == 0 ? {} : {
    "--extra-jars" = join(",", var.extra_jar_uris)
  }

  workflows = {
    bau    = "Business-as-usual incremental runs on a schedule (no run properties: every job runs BAU)."
    replay = "Replay requests, started with StartWorkflowRun; the request is in the run properties, which every job reads."
  }

  first_jobs = [for key, job in var.jobs : key if job.starts_after == null]

  # One conditional trigger per workflow and job that follows another.
  cascade = merge([
    for workflow in keys(local.workflows) : {
      for key, job in var.jobs : "${workflow}-${key}" => {
        workflow = workflow
        job      = key
        after    = job.starts_after
      } if job.starts_after != null
    }
  ]...)
}

resource "aws_glue_security_configuration" "this" {
  name = "${var.name_prefix}-glue"

  encryption_configuration {
    cloudwatch_encryption {
      cloudwatch_encryption_mode = "SSE-KMS"
      kms_key_arn                = var.kms_key_arn
    }

    job_bookmarks_encryption {
      job_bookmarks_encryption_mode = "CSE-KMS"
      kms_key_arn                   = var.kms_key_arn
    }

    s3_encryption {
      s3_encryption_mode = "SSE-KMS"
      kms_key_arn        = var.kms_key_arn
    }
  }
}

resource "aws_glue_job" "this" {
  for_each = var.jobs

  name                   = "${var.name_prefix}-${each.key}"
  description            = each.value.description
  role_arn               = var.role_arns[each.key]
  glue_version           = "5.1"
  execution_class        = "STANDARD"
  worker_type            = var.worker_type
  number_of_workers      = var.number_of_workers
  timeout                = var.timeout_minutes
  max_retries            = var.max_retries
  security_configuration = aws_glue_security_configuration.this.name

  command {
    name            = "glueetl"
    script_location = "s3://${var.artifacts_bucket}/${each.value.script}"
    python_version  = "3"
  }

  execution_property {
    max_concurrent_runs = 1
  }

  default_arguments         = merge(local.glue_arguments, local.replay_arguments)
  non_overridable_arguments = merge(local.runtime_arguments, local.extra_jar_arguments, each.value.settings)
}

resource "aws_glue_workflow" "this" {
  for_each = local.workflows

  name                = "${var.name_prefix}-${each.key}"
  description         = each.value
  max_concurrent_runs = 1
}

resource "aws_glue_trigger" "bau_schedule" {
  name          = "${var.name_prefix}-bau-schedule"
  description   = "Starts the BAU run on schedule."
  workflow_name = aws_glue_workflow.this["bau"].name
  type          = "SCHEDULED"
  schedule      = var.bau_schedule
  enabled       = var.enable_bau_schedule

  dynamic "actions" {
    for_each = local.first_jobs

    content {
      job_name = aws_glue_job.this[actions.value].name
    }
  }
}

resource "aws_glue_trigger" "replay_start" {
  name          = "${var.name_prefix}-replay-start"
  description   = "Starts a replay request's run (StartWorkflowRun with the request as run properties)."
  workflow_name = aws_glue_workflow.this["replay"].name
  type          = "ON_DEMAND"
  # For an ON_DEMAND trigger, enabled = true makes the AWS provider call StartTrigger at
  # creation: a replay run with no request. StartWorkflowRun fires it all the same.
  enabled = false

  dynamic "actions" {
    for_each = local.first_jobs

    content {
      job_name = aws_glue_job.this[actions.value].name
    }
  }
}

resource "aws_glue_trigger" "cascade" {
  for_each = local.cascade

  name          = "${var.name_prefix}-${each.value.workflow}-${each.value.job}-after-${each.value.after}"
  description   = "Starts ${each.value.job} when ${each.value.after} succeeded in the same ${each.value.workflow} run."
  workflow_name = aws_glue_workflow.this[each.value.workflow].name
  type          = "CONDITIONAL"

  actions {
    job_name = aws_glue_job.this[each.value.job].name
  }

  predicate {
    conditions {
      job_name         = aws_glue_job.this[each.value.after].name
      state            = "SUCCEEDED"
      logical_operator = "EQUALS"
    }
  }
}
