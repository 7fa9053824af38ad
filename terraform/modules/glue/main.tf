# Per pipeline (var.pipelines: adding a pipeline is adding an entry), two Glue jobs and the two
# workflows that run them as a cascade, normalize when ingest SUCCEEDED, then the shared publish
# job when normalize SUCCEEDED:
#
#   <prefix>-<entity>-ingest     the source, read in the requested mode, into raw/<entity>
#   <prefix>-<entity>-normalize  raw/<entity> into normalized/<entity> (MERGE) and the outbox
#   <prefix>-<entity>-bau        SCHEDULED start trigger (var.bau_schedule) -> ingest -> normalize
#                                -> publish: the business-as-usual run. No run properties: both
#                                jobs run BAU.
#   <prefix>-<entity>-replay     ON_DEMAND start trigger -> ingest -> normalize -> publish: a
#                                replay request.
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
# (max_concurrent_runs = 1: Delta on S3 is single-writer), so a replay never races a running BAU
# run. The trigger checks for runs in progress before starting; a workflow's max_concurrent_runs
# counts runs of that workflow only, so a BAU run that starts in between lets StartWorkflowRun
# succeed and makes the replay run's ingest job run fail at once (refused for concurrency,
# nothing written), which the trigger watches for and reports as busy.
#
# One publish job for all pipelines, <prefix>-publish: it drains every entity's outbox to its
# sink. It is started by a CONDITIONAL trigger in each workflow of each pipeline (publish when
# normalize SUCCEEDED in the same run) and by its own SCHEDULED trigger outside the workflows
# (var.publish_schedule), which catches up whatever a cascade missed. The publisher enforces
# one run at a time itself, with a lease per entity (_publish/<entity>/lease-*): a start while
# a run is active exits 0 at once and the running one catches up.

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

  # How many publish runs may be started at once: one cascade per workflow (each workflow runs
  # once at a time), the schedule and one start by hand. Not 1, unlike the other jobs: the
  # publisher's lease, not Glue, keeps it to one active run, and with 1 a cascade that fires
  # while the scheduled run (or another pipeline's cascade) is active would fail with
  # ConcurrentRunsExceededException (a failed run, an alert, a failed workflow run) instead of
  # being the no-op that exits 0 at once.
  publish_max_concurrent_runs = 2 * length(var.pipelines) + 2
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

# Outside the workflows: each job maintains the tables it writes (--maintenance true), on its own
# schedule. Through the job itself, so that a table still has one writer at a time: Glue runs the
# job once at a time (max_concurrent_runs = 1), and a start that finds it running fails instead
# of racing it (the next schedule tries again).
resource "aws_glue_trigger" "maintenance_schedule" {
  for_each = local.jobs

  name        = "${var.name_prefix}-${each.key}-maintenance"
  description = "Maintains the tables the ${each.value.entity} ${each.value.stage} job writes, on schedule (--maintenance true)."
  type        = "SCHEDULED"
  schedule    = var.maintenance_schedule
  enabled     = var.enable_maintenance_schedule

  actions {
    job_name = aws_glue_job.this[each.key].name
    arguments = merge(
      { "--maintenance" = "true" },
      var.maintenance_vacuum_retention_days == null ? {} : {
        "--vacuum_retention_days" = tostring(var.maintenance_vacuum_retention_days)
      },
    )
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

# --- the publisher ------------------------------------------------------------------------------

resource "aws_glue_job" "publish" {
  name                   = "${var.name_prefix}-publish"
  description            = "glue-replay publish: every pipeline's outbox/<entity> to its sink (dead letters in dead_letter/<entity>, ledger in runs/publish/<entity>)."
  role_arn               = var.publish_role_arn
  glue_version           = "5.1"
  execution_class        = "STANDARD"
  worker_type            = var.worker_type
  number_of_workers      = var.number_of_workers
  timeout                = var.timeout_minutes
  max_retries            = var.max_retries
  security_configuration = aws_glue_security_configuration.this.name

  command {
    name            = "glueetl"
    script_location = "s3://${var.artifacts_bucket}/${var.publish_script}"
    python_version  = "3"
  }

  execution_property {
    # > 1 on purpose: see local.publish_max_concurrent_runs (the lease serialises the runs).
    max_concurrent_runs = local.publish_max_concurrent_runs
  }

  # --warehouse and the runtime are fixed; the sinks and --fail_on_dead_letter are deployment
  # defaults a run may override. --entities, --dead_letters and --dead_letter_ids are the
  # operator's per-run arguments and absent here.
  default_arguments         = merge(local.glue_arguments, var.publish_arguments)
  non_overridable_arguments = merge(local.runtime_arguments, local.extra_jar_arguments, var.publish_settings)
}

# In each workflow (BAU and replay) of each pipeline: publish once normalize succeeded in the
# same run, so a run's events leave as soon as they are in the outbox.
resource "aws_glue_trigger" "publish_after_normalize" {
  for_each = local.workflows

  name          = "${var.name_prefix}-${each.key}-publish-after-normalize"
  description   = "Starts the publisher when ${each.value.entity} normalize succeeded in the same ${each.value.kind} run."
  workflow_name = aws_glue_workflow.this[each.key].name
  type          = "CONDITIONAL"

  actions {
    job_name = aws_glue_job.publish.name
  }

  predicate {
    conditions {
      job_name         = aws_glue_job.this["${each.value.entity}-normalize"].name
      state            = "SUCCEEDED"
      logical_operator = "EQUALS"
    }
  }
}

# Outside the workflows: the publisher on its own schedule, which retries what a failed or
# skipped cascade left in the outboxes.
resource "aws_glue_trigger" "publish_schedule" {
  name        = "${var.name_prefix}-publish-schedule"
  description = "Starts the publisher on schedule (it catches up every entity's outbox)."
  type        = "SCHEDULED"
  schedule    = var.publish_schedule
  enabled     = var.enable_publish_schedule

  actions {
    job_name = aws_glue_job.publish.name
  }
}
