# glue-replay on AWS: the Glue jobs of this repository (ingest -> normalize -> Delta outbox),
# the workflows that cascade them, the replay Lambda, and what they need, one module per concern.
#
#   kms         the key that encrypts everything below
#   storage     warehouse, artifacts and uploads buckets (+ their access-log bucket)
#   artifacts   job scripts, library wheel and Lambda zip from `make package`, uploaded
#   secrets     the source API token (value put by the operator)
#   locking     optional DynamoDB table for Delta's multi-writer S3 log store
#   iam         a least-privilege role per Glue job and one for the Lambda
#   glue        the jobs, the BAU (scheduled) and replay (on demand) workflows
#   trigger     the replay Lambda
#   monitoring  failed runs -> SNS topic (-> e-mail)

locals {
  repo_root     = coalesce(var.repo_root, "${path.root}/..")
  warehouse_uri = "s3://${module.storage.warehouse_bucket}/${var.warehouse_prefix}"
  uploads_uri   = "s3://${module.storage.uploads_bucket}/${var.uploads_prefix}"
  temp_dir_uri  = "s3://${module.storage.artifacts_bucket}/${module.storage.glue_temp_prefix}/"

  # The Glue jobs, one per script in glue_jobs/ (tests/test_terraform.py holds this list to
  # glue_replay.jobs.JOBS). Adding a job is adding an entry:
  #   script        its file, uploaded under the same key, run as the job's script
  #   starts_after  the job it follows in a workflow run (null: the first)
  #   reads/writes  the warehouse tables (top-level folders) its role may read / write
  #   settings      its deployment settings: non-overridable arguments, fixed per deployment.
  #                 The replay arguments (overridable per run) and Glue's own are added by
  #                 modules/glue for every job.
  glue_jobs = {
    ingest_rest_api = {
      description        = "glue-replay ingest: the REST API's customers, in the requested replay mode, into raw/customers."
      script             = "glue_jobs/ingest_rest_api.py"
      starts_after       = null
      reads              = []
      writes             = ["raw", "runs", "quarantine"]
      reads_source_token = true
      settings = {
        "--warehouse"           = local.warehouse_uri
        "--source_url"          = var.source_url
        "--source_token_secret" = module.secrets.secret_arn
      }
    }
    normalize = {
      description        = "glue-replay normalize: raw/customers into normalized/customers (MERGE) and outbox events."
      script             = "glue_jobs/normalize.py"
      starts_after       = "ingest_rest_api"
      reads              = ["raw"]
      writes             = ["normalized", "outbox", "runs", "quarantine"]
      reads_source_token = false
      settings = {
        "--warehouse" = local.warehouse_uri
      }
    }
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
  jobs            = local.glue_jobs
  wheel_file      = var.wheel_file
  lambda_zip_file = var.lambda_zip_file
  extra_jar_files = var.enable_dynamodb_log_store ? [var.dynamodb_log_store_jar_file] : []
}

module "secrets" {
  source = "./modules/secrets"

  name_prefix          = var.name_prefix
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
  job_arns                     = module.glue.job_arns
  workflow_arns                = module.glue.workflow_arns
  warehouse_bucket_arn         = module.storage.warehouse_bucket_arn
  warehouse_prefix             = var.warehouse_prefix
  artifacts_bucket_arn         = module.storage.artifacts_bucket_arn
  wheel_key                    = module.artifacts.wheel_key
  extra_jar_keys               = module.artifacts.extra_jar_keys
  glue_temp_prefix             = module.storage.glue_temp_prefix
  uploads_bucket_arn           = module.storage.uploads_bucket_arn
  uploads_prefix               = var.uploads_prefix
  source_token_secret_arn      = module.secrets.secret_arn
  kms_key_arn                  = module.kms.key_arn
  dynamodb_log_store_table_arn = one(module.locking[*].table_arn)
  lambda_function_name         = local.lambda_function_name
  lambda_dlq_name              = local.lambda_dlq_name
}

module "glue" {
  source = "./modules/glue"

  name_prefix         = var.name_prefix
  jobs                = local.glue_jobs
  role_arns           = module.iam.glue_role_arns
  artifacts_bucket    = module.storage.artifacts_bucket
  wheel_uri           = module.artifacts.wheel_uri
  extra_jar_uris      = module.artifacts.extra_jar_uris
  temp_dir_uri        = local.temp_dir_uri
  kms_key_arn         = module.kms.key_arn
  worker_type         = var.worker_type
  number_of_workers   = var.number_of_workers
  timeout_minutes     = var.job_timeout_minutes
  max_retries         = var.max_retries
  bau_schedule        = var.bau_schedule
  enable_bau_schedule = var.enable_bau_schedule
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
    GLUE_REPLAY_WORKFLOW      = module.glue.workflow_names["replay"]
    GLUE_REPLAY_BAU_WORKFLOW  = module.glue.workflow_names["bau"]
    GLUE_REPLAY_INGEST_JOB    = module.glue.job_names["ingest_rest_api"]
    GLUE_REPLAY_NORMALIZE_JOB = module.glue.job_names["normalize"]
    GLUE_REPLAY_UPLOADS_URI   = local.uploads_uri
    GLUE_REPLAY_WAREHOUSE     = local.warehouse_uri
    # Uploaded id files are encrypted with the deployment's key, like everything else here.
    GLUE_REPLAY_UPLOADS_KMS_KEY = module.kms.key_arn
  }
}

module "monitoring" {
  source = "./modules/monitoring"

  name_prefix          = var.name_prefix
  kms_key_arn          = module.kms.key_arn
  job_names            = values(module.glue.job_names)
  lambda_function_name = module.trigger.function_name
  lambda_dlq_name      = module.trigger.dlq_name
  alarm_email          = var.alarm_email
}
