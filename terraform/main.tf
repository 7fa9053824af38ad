# glue-replay on AWS: the pipelines of var.pipelines, each an ingest and a normalize Glue job
# (ingest -> normalize -> Delta outbox) with a BAU and a replay workflow that cascade them, one
# publish job for all pipelines (outbox -> sink) that each workflow starts after normalize and a
# schedule starts too, the replay Lambda, and what they need, one module per concern. Adding a
# pipeline is adding an entry to var.pipelines with its own two scripts in glue_jobs/.
#
#   kms         the key that encrypts everything below
#   storage     warehouse, artifacts and uploads buckets (+ their access-log bucket)
#   artifacts   job scripts, library wheel and Lambda zip from `make package`, uploaded
#   secrets     a source token secret per pipeline that reads one (value put by the operator)
#   locking     optional DynamoDB table for Delta's multi-writer S3 log store
#   iam         a least-privilege role per Glue job (the publisher's: its sinks only) and one
#               for the Lambda
#   glue        the jobs, the BAU (scheduled) and replay (on demand) workflows of every pipeline,
#               the publish job, its cascades after normalize and its schedule
#   trigger     the replay Lambda
#   monitoring  failed runs -> SNS topic (-> e-mail)

locals {
  repo_root     = coalesce(var.repo_root, "${path.root}/..")
  warehouse_uri = "s3://${module.storage.warehouse_bucket}/${var.warehouse_prefix}"
  uploads_uri   = "s3://${module.storage.uploads_bucket}/${var.uploads_prefix}"
  temp_dir_uri  = "s3://${module.storage.artifacts_bucket}/${module.storage.glue_temp_prefix}/"

  # Each pipeline's deployment settings (DESIGN §4): non-overridable, fixed per deployment.
  # The ingest job reads the source: --source_url if the entry has one, --source_token_secret if
  # it reads a secret, and the pipeline's own settings as --<name>. Normalize reads the warehouse
  # only. The replay arguments are overridable per run and not set here at all.
  ingest_settings = {
    for entity, pipeline in var.pipelines : entity => merge(
      { "--warehouse" = local.warehouse_uri },
      { for name, value in { "--source_url" = pipeline.source_url } : name => value if pipeline.source_url != null },
      { for name, value in { "--source_token_secret" = lookup(module.secrets.secret_arns, entity, null) } : name => value if pipeline.reads_source_token },
      { for name, value in pipeline.settings : "--${name}" => value },
    )
  }
  normalize_settings = { "--warehouse" = local.warehouse_uri }

  # The two Glue jobs of every pipeline by job key "<entity>-<stage>" (the job and its role are
  # named <name_prefix>-<key>), with the warehouse tables (paths under the warehouse prefix) its
  # role may read and write.
  glue_jobs = merge([
    for entity, pipeline in var.pipelines : {
      "${entity}-ingest" = {
        entity             = entity
        script             = pipeline.ingest_script
        reads              = []
        writes             = ["raw/${entity}", "quarantine/${entity}/ingest", "runs/ingest/${entity}"]
        reads_source_token = pipeline.reads_source_token
      }
      "${entity}-normalize" = {
        entity = entity
        script = pipeline.normalize_script
        reads  = ["raw/${entity}"]
        writes = [
          "normalized/${entity}", "outbox/${entity}", "quarantine/${entity}/normalize",
          "runs/normalize/${entity}",
        ]
        reads_source_token = false
      }
    }
  ]...)

  # The publisher, one job for every pipeline (<name_prefix>-publish). Its settings are fixed;
  # its sinks and --fail_on_dead_letter are deployment defaults a run may override; the
  # operator's --entities, --dead_letters and --dead_letter_ids are never set here.
  publish_script   = "glue_jobs/publish_outbox.py"
  publish_settings = { "--warehouse" = local.warehouse_uri }
  publish_arguments = {
    "--sink"                = var.publish_sink
    "--entity_sinks"        = jsonencode(var.publish_entity_sinks)
    "--fail_on_dead_letter" = tostring(var.publish_fail_on_dead_letter)
  }
  # The sinks actually used (an entity's override, else the default): the role may send to these.
  publish_sinks = distinct([
    for entity in keys(var.pipelines) : lookup(var.publish_entity_sinks, entity, var.publish_sink)
  ])

  # What the sink variables accept (variables.tf): an AWS sink by ARN, so its role's policy can
  # name it; Kafka brokers and topic; JSONL files under an S3 prefix.
  sink_uri_pattern = join("", [
    "^(",
    "kinesis:arn:aws(-[a-z]+)*:kinesis:[a-z]{2}(-[a-z]+)+-[0-9]+:[0-9]{12}:stream/[A-Za-z0-9_.-]{1,128}",
    "|sqs:arn:aws(-[a-z]+)*:sqs:[a-z]{2}(-[a-z]+)+-[0-9]+:[0-9]{12}:[A-Za-z0-9_-]{1,80}(\\.fifo)?",
    "|sns:arn:aws(-[a-z]+)*:sns:[a-z]{2}(-[a-z]+)+-[0-9]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\\.fifo)?",
    "|eventbridge:arn:aws(-[a-z]+)*:events:[a-z]{2}(-[a-z]+)+-[0-9]+:[0-9]{12}:event-bus/[A-Za-z0-9._/-]{1,256}",
    "|kafka:[A-Za-z0-9.-]+:[0-9]{1,5}(,[A-Za-z0-9.-]+:[0-9]{1,5})*/[A-Za-z0-9._-]{1,249}",
    "|file:s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9_.=-]+)+/?",
    ")$",
  ])
  # The warehouse's tables, by their first folder: a file: sink may not write among them (its
  # role may write everything under its prefix).
  warehouse_table_roots = ["raw", "normalized", "outbox", "quarantine", "runs", "requests", "dead_letter", "_publish"]

  # Entity => its two workflows' names (the jobs' roles read their own pipeline's run properties).
  pipeline_workflows = {
    for entity in keys(var.pipelines) : entity => {
      bau    = module.glue.workflow_names["${entity}-bau"]
      replay = module.glue.workflow_names["${entity}-replay"]
    }
  }

  # What a trigger needs to start and validate a replay of each pipeline: the Lambda's
  # GLUE_REPLAY_PIPELINES and the CLI's cli_config "pipelines" (glue_replay.trigger.config).
  trigger_pipelines = {
    for entity, pipeline in var.pipelines : entity => merge(module.glue.pipelines[entity], {
      id_pattern = pipeline.id_rule.pattern
      id_help    = pipeline.id_rule.help
    })
  }

  lambda_function_name = "${var.name_prefix}-trigger"
  lambda_dlq_name      = "${var.name_prefix}-trigger-dlq"
  log_store_table_name = "${var.name_prefix}-delta-log"
}

module "kms" {
  source = "./modules/kms"

  name_prefix             = var.name_prefix
  deletion_window_in_days = var.kms_deletion_window_days
}

module "storage" {
  source = "./modules/storage"

  name_prefix                        = var.name_prefix
  kms_key_arn                        = module.kms.key_arn
  force_destroy                      = var.force_destroy
  uploads_expiration_days            = var.uploads_expiration_days
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days
  access_log_expiration_days         = var.access_log_expiration_days
}

module "artifacts" {
  source = "./modules/artifacts"

  bucket          = module.storage.artifacts_bucket
  kms_key_arn     = module.kms.key_arn
  repo_root       = local.repo_root
  jobs            = merge({ for key, job in local.glue_jobs : key => { script = job.script } }, { publish = { script = local.publish_script } })
  wheel_file      = var.wheel_file
  lambda_zip_file = var.lambda_zip_file
  extra_jar_files = var.enable_dynamodb_log_store ? [var.dynamodb_log_store_jar_file] : []
}

module "secrets" {
  source = "./modules/secrets"

  name_prefix          = var.name_prefix
  pipelines            = [for entity, pipeline in var.pipelines : entity if pipeline.reads_source_token]
  kms_key_arn          = module.kms.key_arn
  recovery_window_days = var.secret_recovery_window_days
}

module "locking" {
  source = "./modules/locking"
  count  = var.enable_dynamodb_log_store ? 1 : 0

  table_name          = local.log_store_table_name
  kms_key_arn         = module.kms.key_arn
  deletion_protection = var.dynamodb_log_store_deletion_protection
}

module "iam" {
  source = "./modules/iam"

  name_prefix                  = var.name_prefix
  jobs                         = local.glue_jobs
  job_names                    = module.glue.job_names
  workflow_names               = local.pipeline_workflows
  warehouse_bucket_arn         = module.storage.warehouse_bucket_arn
  warehouse_prefix             = var.warehouse_prefix
  artifacts_bucket_arn         = module.storage.artifacts_bucket_arn
  wheel_key                    = module.artifacts.wheel_key
  extra_jar_keys               = module.artifacts.extra_jar_keys
  glue_temp_prefix             = module.storage.glue_temp_prefix
  uploads_bucket_arn           = module.storage.uploads_bucket_arn
  uploads_prefix               = var.uploads_prefix
  source_token_secret_arns     = module.secrets.secret_arns
  kms_key_arn                  = module.kms.key_arn
  dynamodb_log_store_table_arn = one(module.locking[*].table_arn)
  lambda_function_name         = local.lambda_function_name
  lambda_dlq_name              = local.lambda_dlq_name
  publish_script               = local.publish_script
  publish_sinks                = local.publish_sinks
  publish_sink_kms_key_arns    = var.publish_sink_kms_key_arns
}

module "glue" {
  source = "./modules/glue"

  name_prefix = var.name_prefix
  pipelines = {
    for entity, pipeline in var.pipelines : entity => {
      description = pipeline.description
      ingest      = { script = pipeline.ingest_script, settings = local.ingest_settings[entity] }
      normalize   = { script = pipeline.normalize_script, settings = local.normalize_settings }
    }
  }
  role_arns                         = module.iam.glue_role_arns
  artifacts_bucket                  = module.storage.artifacts_bucket
  wheel_uri                         = module.artifacts.wheel_uri
  extra_jar_uris                    = module.artifacts.extra_jar_uris
  temp_dir_uri                      = local.temp_dir_uri
  kms_key_arn                       = module.kms.key_arn
  worker_type                       = var.worker_type
  number_of_workers                 = var.number_of_workers
  timeout_minutes                   = var.job_timeout_minutes
  max_retries                       = var.max_retries
  bau_schedule                      = var.bau_schedule
  enable_bau_schedule               = var.enable_bau_schedule
  maintenance_schedule              = var.maintenance_schedule
  enable_maintenance_schedule       = var.enable_maintenance_schedule
  maintenance_vacuum_retention_days = var.maintenance_vacuum_retention_days
  publish_script                    = local.publish_script
  publish_role_arn                  = module.iam.publish_role_arn
  publish_settings                  = local.publish_settings
  publish_arguments                 = local.publish_arguments
  publish_schedule                  = var.publish_schedule
  enable_publish_schedule           = var.enable_publish_schedule
  delta_log_store = var.enable_dynamodb_log_store ? {
    table_name = local.log_store_table_name
    region     = var.region
  } : null

  # A job (and the BAU schedule) must not exist before its script and the wheel are uploaded.
  depends_on = [module.artifacts]
}

module "trigger" {
  source = "./modules/trigger"

  function_name        = local.lambda_function_name
  role_arn             = module.iam.lambda_role_arn
  package_bucket       = module.storage.artifacts_bucket
  package_key          = module.artifacts.lambda_zip_key
  package_version      = module.artifacts.lambda_zip_version
  kms_key_arn          = module.kms.key_arn
  dlq_name             = local.lambda_dlq_name
  reserved_concurrency = var.lambda_reserved_concurrency
  log_retention_days   = var.log_retention_days

  environment = {
    GLUE_REPLAY_PIPELINES   = jsonencode(local.trigger_pipelines)
    GLUE_REPLAY_UPLOADS_URI = local.uploads_uri
    GLUE_REPLAY_WAREHOUSE   = local.warehouse_uri
    # Uploaded id files are encrypted with the deployment's key, like everything else here.
    GLUE_REPLAY_UPLOADS_KMS_KEY = module.kms.key_arn
  }
}

module "monitoring" {
  source = "./modules/monitoring"

  name_prefix          = var.name_prefix
  kms_key_arn          = module.kms.key_arn
  job_names            = concat(values(module.glue.job_names), [module.glue.publish_job_name])
  lambda_function_name = module.trigger.function_name
  lambda_dlq_name      = module.trigger.dlq_name
  alarm_email          = var.alarm_email
}
