# Per pipeline (var.pipelines: adding a pipeline is adding an entry), two Glue jobs and the two
# workflows that run them as a cascade, normalize when ingest SUCCEEDED:
#
#   <prefix>-<entity>-ingest     the source, read in the requested mode, into raw/<entity>
#   <prefix>-<entity>-normalize  raw/<entity> into normalized/<entity> (MERGE) and the outbox
#   <prefix>-<entity>-bau        SCHEDULED start trigger (var.bau_schedule) -> ingest -> normalize:
#                                the business-as-usual run. No run properties: both jobs run BAU.
#   <prefix>-<entity>-replay     ON_DEMAND start trigger -> ingest -> normalize: a replay request.
#
# A replay request travels as the replay workflow run's properties: the CLI or the Lambda calls
# StartWorkflowRun(Name, RunProperties={"replay_mode": ..., "date": ..., "ids_file": ...,
# "request_id": ...}), and both jobs of that run read them with GetWorkflowRunProperties (a job
# started by a trigger receives --WORKFLOW_NAME and --WORKFLOW_RUN_ID). So the request reaches
# ingest and normalize alike, and trigger actions carry no replay arguments: they are fixed at
# deploy time and could not carry a per-request value. A single stage is started directly with
# StartJobRun and the request as --arguments: the replay arguments (DESIGN §4) are not default
# arguments at all, so an argument a run does not pass is absent, which is what absent means.
#
# Two workflows and not one: a workflow has one start trigger, and a SCHEDULED trigger is not
# what StartWorkflowRun fires on demand. Both share the jobs; each job runs one at a time
# (max_concurrent_runs = 1: Delta on S3 is single-writer), so a replay that meets a running BAU
# run is refused as busy (ConcurrentRunsExceededException) instead of racing it.

locals {
  stages = {
    ingest    = "reads the source in the requested replay mode into raw/<entity>"
    normalize = "MERGEs raw/<entity> into normalized/<entity> and appends the outbox events"
  }

  # Job key "<entity>-<stage>" => the job; the job is named <name_prefix>-<key>.
  jobs = merge([
    for entity, pipeline in var.pipelines : {
      for stage, what in local.stages : "${entity}-${stage}" => {
        entity      = entity
        stage       = stage
        description = "glue-replay ${stage} of ${entity} (${pipeline.description}): ${replace(what, "<entity>", entity)}."
        script      = pipeline[stage].script
        settings    = pipeline[stage].settings
      }
    }
  ]...)

  # Workflow key "<entity>-<kind>" => the workflow; it is named <name_prefix>-<key>.
  workflow_kinds = {
    bau    = "business-as-usual incremental runs on a schedule (no run properties: both jobs run BAU)"
    replay = "replay requests, started with StartWorkflowRun; the request is in the run properties, which both jobs read"
  }
  workflows = merge([
    for entity, pipeline in var.pipelines : {
      for kind, what in local.workflow_kinds : "${entity}-${kind}" => {
        entity      = entity
        kind        = kind
        description = "glue-replay ${entity} (${pipeline.description}): ${what}."
      }
    }
  ]...)

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
  for_each = local.jobs

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

  # The replay arguments are absent by default (DESIGN §4); the deployment settings are fixed.
  default_arguments         = local.glue_arguments
  non_overridable_arguments = merge(local.runtime_arguments, local.extra_jar_arguments, each.value.settings)
}

resource "aws_glue_workflow" "this" {
  for_each = local.workflows

  name                = "${var.name_prefix}-${each.key}"
  description         = each.value.description
  max_concurrent_runs = 1
}

resource "aws_glue_trigger" "bau_schedule" {
  for_each = var.pipelines

  name          = "${var.name_prefix}-${each.key}-bau-schedule"
  description   = "Starts the ${each.key} BAU run on schedule."
  workflow_name = aws_glue_workflow.this["${each.key}-bau"].name
  type          = "SCHEDULED"
  schedule      = var.bau_schedule
  enabled       = var.enable_bau_schedule

  actions {
    job_name = aws_glue_job.this["${each.key}-ingest"].name
  }
}

resource "aws_glue_trigger" "replay_start" {
  for_each = var.pipelines

  name          = "${var.name_prefix}-${each.key}-replay-start"
  description   = "Starts a ${each.key} replay request's run (StartWorkflowRun with the request as run properties)."
  workflow_name = aws_glue_workflow.this["${each.key}-replay"].name
  type          = "ON_DEMAND"
  # For an ON_DEMAND trigger, enabled = true makes the AWS provider call StartTrigger at
  # creation: a replay run with no request. StartWorkflowRun fires it all the same.
  enabled = false

  actions {
    job_name = aws_glue_job.this["${each.key}-ingest"].name
  }
}

# In each workflow (BAU and replay) of each pipeline: normalize once ingest succeeded in the same run.
resource "aws_glue_trigger" "cascade" {
  for_each = local.workflows

  name          = "${var.name_prefix}-${each.key}-normalize-after-ingest"
  description   = "Starts ${each.value.entity} normalize when ${each.value.entity} ingest succeeded in the same ${each.value.kind} run."
  workflow_name = aws_glue_workflow.this[each.key].name
  type          = "CONDITIONAL"

  actions {
    job_name = aws_glue_job.this["${each.value.entity}-normalize"].name
  }

  predicate {
    conditions {
      job_name         = aws_glue_job.this["${each.value.entity}-ingest"].name
      state            = "SUCCEEDED"
      logical_operator = "EQUALS"
    }
  }
}
