# Every input of a deployment. Each has an example in terraform.tfvars.example; deploying to a
# new account needs variables only, never a code edit.

variable "region" {
  type        = string
  description = "AWS region of the deployment (the Glue jobs, buckets and Lambda), e.g. eu-west-1."

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "name_prefix" {
  type        = string
  description = "Prefix of every resource name (jobs are <name_prefix>-<entity>-ingest and -normalize, buckets <name_prefix>-<purpose>-<account>-<region>): lower-case letters, digits and hyphens, 3-20 characters."
  default     = "glue-replay"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-20 lower-case letters, digits or hyphens, starting with a letter and not ending with a hyphen (it is part of S3 bucket names)."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags applied to every resource (provider default_tags)."
  default     = {}
}

variable "pipelines" {
  type = map(object({
    description      = string
    ingest_script    = string
    normalize_script = string
    id_rule = object({
      pattern = string
      help    = string
    })
    source_url         = optional(string)
    reads_source_token = optional(bool, false)
    settings           = optional(map(string), {})
  }))
  description = <<-EOT
    The pipelines to deploy, by entity name (lower_snake_case, 1-32 characters: it is part of the
    job, workflow, role and secret names and of the table paths raw/<entity>, normalized/<entity>
    and quarantine/<entity>). The default deploys the bundled pipelines (customers from a REST API,
    orders from PostgreSQL); replace them with yours.
    Each entry:
      description         what the pipeline moves, for the jobs' and workflows' descriptions
      ingest_script       its ingest job's script, glue_jobs/<name>.py (relative to repo_root)
      normalize_script    its normalize job's script, glue_jobs/<name>.py
      id_rule             the entity's id rule as the library defines it (Entity.ids): a regex
                          that must match a whole id, and its help text; the replay Lambda and the
                          CLI validate requests with it before starting anything
      source_url          the source's base URL for the ingest job's --source_url, or null
      reads_source_token  whether the ingest job reads a Secrets Manager secret with the source's
                          credentials (<name_prefix>-<entity>-source-token, created empty)
      settings            the pipeline's own deployment settings (Pipeline.settings), name => value:
                          each becomes the ingest job's non-overridable --<name>. No credentials here:
                          they belong in the secret.
  EOT
  default = {
    customers = {
      description      = "CRM customers from the CRM's REST API"
      ingest_script    = "glue_jobs/ingest_customers.py"
      normalize_script = "glue_jobs/normalize_customers.py"
      # glue_replay_examples.customers.CUSTOMER_IDS (tests/test_terraform.py holds them equal).
      id_rule = {
        pattern = "[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}"
        help    = "1-64 letters, digits or _ . : -, starting with a letter or digit"
      }
      source_url         = null
      reads_source_token = true
      settings           = {}
    }
    orders = {
      description      = "shop orders with their line items from the shop's PostgreSQL database"
      ingest_script    = "glue_jobs/ingest_orders.py"
      normalize_script = "glue_jobs/normalize_orders.py"
      # glue_replay_examples.orders.ORDER_IDS (tests/test_terraform.py holds them equal).
      id_rule = {
        pattern = "[1-9][0-9]{0,17}"
        help    = "an order number: 1-18 digits, not starting with 0"
      }
      source_url = null
      # The secret holds {"username": ..., "password": ...}; the URL never holds credentials.
      # Glue 5.x ships a PostgreSQL JDBC driver, so the job needs no --extra-jars; a database
      # in a VPC needs a Glue connection for the job's network path.
      reads_source_token = true
      settings = {
        jdbc_url = "jdbc:postgresql://shop-db.example.com:5432/shop" # replace with your database's
      }
    }
  }

  validation {
    condition     = length(var.pipelines) >= 1
    error_message = "pipelines must declare at least one pipeline."
  }

  validation {
    condition     = alltrue([for entity in keys(var.pipelines) : can(regex("^[a-z][a-z0-9_]{0,31}$", entity))])
    error_message = "Each pipeline's key is its entity name: lower_snake_case, 1-32 characters, starting with a letter (e.g. customers, purchase_orders)."
  }

  validation {
    condition = alltrue(flatten([
      for pipeline in var.pipelines : [
        for script in [pipeline.ingest_script, pipeline.normalize_script] : can(regex("^glue_jobs/[A-Za-z0-9_]+\\.py$", script))
      ]
    ]))
    error_message = "ingest_script and normalize_script must be Python files directly under glue_jobs/, e.g. glue_jobs/ingest_orders.py."
  }

  validation {
    condition = length(distinct(flatten([
      for pipeline in var.pipelines : [pipeline.ingest_script, pipeline.normalize_script]
    ]))) == 2 * length(var.pipelines)
    error_message = "Every pipeline has its own two scripts: no script may be used twice (a script names its pipeline)."
  }

  validation {
    condition     = alltrue([for pipeline in var.pipelines : trimspace(pipeline.description) != ""])
    error_message = "Each pipeline needs a description."
  }

  validation {
    condition     = alltrue([for pipeline in var.pipelines : trimspace(pipeline.id_rule.pattern) != "" && trimspace(pipeline.id_rule.help) != ""])
    error_message = "Each pipeline's id_rule needs a pattern (a regex matching a whole id) and a help text saying what it accepts."
  }

  validation {
    condition     = alltrue([for pipeline in var.pipelines : pipeline.source_url == null || can(regex("^https?://[^/@\\s]+(/\\S*)?$", coalesce(pipeline.source_url, "-")))])
    error_message = "source_url must be null or an http(s) URL without user info, e.g. https://api.example.com: credentials go in the source token secret."
  }

  validation {
    condition = alltrue(flatten([
      for pipeline in var.pipelines : [
        for name in keys(pipeline.settings) : can(regex("^[a-z][a-z0-9_]{0,63}$", name))
      ]
    ]))
    error_message = "settings names are the job argument names without the dashes: lower_snake_case, e.g. jdbc_url."
  }

  # The replay fields stay overridable per run and the deployment settings are set from the
  # entry's own attributes; a pipeline setting may be neither (DESIGN §4).
  validation {
    condition = alltrue(flatten([
      for pipeline in var.pipelines : [
        for name in keys(pipeline.settings) : !contains([
          "replay_mode", "date", "until", "ids", "ids_file", "id_column", "request_id", "dry_run",
          "requested_by", "warehouse", "source_url", "source_token_secret", "mode",
          "maintenance", "vacuum_retention_days",
        ], name)
      ]
    ]))
    error_message = "settings may not name a replay argument (replay_mode, date, until, ids, ids_file, id_column, request_id, dry_run, requested_by), a deployment setting set elsewhere (warehouse, source_url, source_token_secret), a maintenance argument (maintenance, vacuum_retention_days) or Glue's reserved mode."
  }
}

variable "warehouse_prefix" {
  type        = string
  description = "Key prefix of the Delta tables in the warehouse bucket (no slashes at either end): the jobs' --warehouse is s3://<bucket>/<warehouse_prefix>."
  default     = "warehouse"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$", var.warehouse_prefix))
    error_message = "warehouse_prefix must be a key prefix without leading or trailing slash, e.g. warehouse or data/glue-replay."
  }
}

variable "uploads_prefix" {
  type        = string
  description = "Key prefix (no slashes at either end) under which the replay trigger uploads id files for --ids_file."
  default     = "ids"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$", var.uploads_prefix))
    error_message = "uploads_prefix must be a key prefix without leading or trailing slash, e.g. ids."
  }
}

variable "uploads_expiration_days" {
  type        = number
  description = "Days after which an uploaded id file is deleted (a replay's ids stay in its ledger row, capped at 20)."
  default     = 30

  validation {
    condition     = var.uploads_expiration_days >= 1 && floor(var.uploads_expiration_days) == var.uploads_expiration_days
    error_message = "uploads_expiration_days must be a whole number of days, at least 1."
  }
}

variable "noncurrent_version_expiration_days" {
  type        = number
  description = "Days an overwritten or deleted S3 object version (a VACUUMed Delta file, a previous wheel) stays recoverable."
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1 && floor(var.noncurrent_version_expiration_days) == var.noncurrent_version_expiration_days
    error_message = "noncurrent_version_expiration_days must be a whole number of days, at least 1."
  }
}

variable "access_log_expiration_days" {
  type        = number
  description = "Days the S3 server access logs of the buckets are kept."
  default     = 365

  validation {
    condition     = var.access_log_expiration_days >= 1 && floor(var.access_log_expiration_days) == var.access_log_expiration_days
    error_message = "access_log_expiration_days must be a whole number of days, at least 1."
  }
}

variable "force_destroy" {
  type        = bool
  description = "Let `terraform destroy` delete the buckets with everything in them (tables included). Only for throwaway deployments."
  default     = false
}

variable "bau_schedule" {
  type        = string
  description = "When the business-as-usual (BAU) run starts: a Glue cron expression in UTC."
  default     = "cron(0 * * * ? *)"

  validation {
    condition     = can(regex("^cron\\(\\S+ \\S+ \\S+ \\S+ \\S+ \\S+\\)$", var.bau_schedule))
    error_message = "bau_schedule must be a six-field Glue cron expression, e.g. cron(0 * * * ? *) for every hour."
  }
}

variable "enable_bau_schedule" {
  type        = bool
  description = "Whether the BAU schedule is active. Replays work either way."
  default     = true
}

variable "maintenance_schedule" {
  type        = string
  description = "When each ingest and normalize job maintains its own tables (--maintenance true: raw's past days clustered by id, normalized sorted by key, quarantine and ledger compacted): a Glue cron expression in UTC. Pick a time clear of the BAU schedule: the job runs once at a time, so a BAU or replay start that finds it maintaining fails (and is reported)."
  default     = "cron(30 3 * * ? *)"

  validation {
    condition     = can(regex("^cron\\(\\S+ \\S+ \\S+ \\S+ \\S+ \\S+\\)$", var.maintenance_schedule))
    error_message = "maintenance_schedule must be a six-field Glue cron expression, e.g. cron(30 3 * * ? *) for 03:30 UTC every day."
  }
}

variable "enable_maintenance_schedule" {
  type        = bool
  description = "Whether the maintenance schedule is active. Without it, tables keep working and slowly read more files."
  default     = true
}

variable "maintenance_vacuum_retention_days" {
  type        = number
  description = "When set, each maintenance run also VACUUMs the job's tables, keeping files (and time travel) this many days: at least 7. null: no VACUUM, every old file is kept."
  default     = null

  validation {
    condition     = var.maintenance_vacuum_retention_days == null || try(var.maintenance_vacuum_retention_days >= 7 && floor(var.maintenance_vacuum_retention_days) == var.maintenance_vacuum_retention_days, false)
    error_message = "maintenance_vacuum_retention_days must be null or a whole number of days, at least 7."
  }
}

variable "worker_type" {
  type        = string
  description = "Glue worker type of the jobs: G.1X, G.2X, G.4X or G.8X (what the AWS provider accepts for a Glue 5.1 Spark job; Standard, G.025X and Z.2X are for older, streaming and Ray jobs)."
  default     = "G.1X"

  validation {
    condition     = contains(["G.1X", "G.2X", "G.4X", "G.8X"], var.worker_type)
    error_message = "worker_type must be one of G.1X, G.2X, G.4X, G.8X."
  }
}

variable "number_of_workers" {
  type        = number
  description = "Number of Glue workers per job run (the driver is one of them)."
  default     = 2

  validation {
    condition     = var.number_of_workers >= 2 && floor(var.number_of_workers) == var.number_of_workers
    error_message = "number_of_workers must be a whole number, at least 2."
  }
}

variable "job_timeout_minutes" {
  type        = number
  description = "Minutes after which Glue stops a job run (state TIMEOUT, reported to the alerts topic)."
  default     = 120

  validation {
    condition     = var.job_timeout_minutes >= 1 && var.job_timeout_minutes <= 10080 && floor(var.job_timeout_minutes) == var.job_timeout_minutes
    error_message = "job_timeout_minutes must be a whole number between 1 and 10080 (7 days)."
  }
}

variable "max_retries" {
  type        = number
  description = "Times Glue retries a failed job run. A retry continues the same request (same request id), so it writes nothing twice."
  default     = 1

  validation {
    condition     = var.max_retries >= 0 && var.max_retries <= 10 && floor(var.max_retries) == var.max_retries
    error_message = "max_retries must be a whole number between 0 and 10."
  }
}

variable "alarm_email" {
  type        = string
  description = "E-mail address that receives failed job runs and trigger failures (it must confirm the subscription), or null for none."
  default     = null

  validation {
    condition     = var.alarm_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarm_email))
    error_message = "alarm_email must be an e-mail address or null."
  }
}

variable "enable_dynamodb_log_store" {
  type        = bool
  description = "Create a DynamoDB table and configure Delta's S3DynamoDBLogStore, which makes concurrent writers to one table safe. Off by default: the jobs run one at a time (max_concurrent_runs = 1), which Delta's default S3 log store supports."
  default     = false
}

variable "dynamodb_log_store_deletion_protection" {
  type        = bool
  description = "Refuse to delete the log-store table (when enable_dynamodb_log_store is true); set false before `terraform destroy`."
  default     = true
}

variable "dynamodb_log_store_jar_file" {
  type        = string
  description = "The io.delta:delta-storage-s3-dynamodb jar (same Delta version as Glue's, 3.3.2) relative to the repository root; uploaded and passed as --extra-jars only when enable_dynamodb_log_store is true."
  default     = "dist/delta-storage-s3-dynamodb-3.3.2.jar"

  validation {
    condition     = can(regex("\\.jar$", var.dynamodb_log_store_jar_file))
    error_message = "dynamodb_log_store_jar_file must name a .jar file."
  }
}

variable "repo_root" {
  type        = string
  description = "Path of the glue-replay repository root, where glue_jobs/ and dist/ are; null means the parent of this terraform/ directory."
  default     = null
}

variable "wheel_file" {
  type        = string
  description = "The library wheel built by `make package`, relative to the repository root; the jobs install it with --additional-python-modules."
  default     = "dist/glue_replay-0.1.0-py3-none-any.whl"

  validation {
    condition     = can(regex("^[^/].*\\.whl$", var.wheel_file))
    error_message = "wheel_file must be a relative path to a .whl file, e.g. dist/glue_replay-0.1.0-py3-none-any.whl."
  }
}

variable "lambda_zip_file" {
  type        = string
  description = "The replay Lambda's package built by `make package`, relative to the repository root."
  default     = "dist/glue_replay_lambda.zip"

  validation {
    condition     = can(regex("^[^/].*\\.zip$", var.lambda_zip_file))
    error_message = "lambda_zip_file must be a relative path to a .zip file, e.g. dist/glue_replay_lambda.zip."
  }
}

variable "lambda_reserved_concurrency" {
  type        = number
  description = "Concurrent executions reserved for the replay Lambda, which also caps it; -1 reserves none. New accounts whose Lambda concurrency quota is 10 cannot reserve any (AWS keeps 10 unreserved): use -1 there."
  default     = 2

  validation {
    condition     = var.lambda_reserved_concurrency == -1 || (var.lambda_reserved_concurrency >= 1 && floor(var.lambda_reserved_concurrency) == var.lambda_reserved_concurrency)
    error_message = "lambda_reserved_concurrency must be -1 (none) or a whole number of at least 1."
  }
}

variable "log_retention_days" {
  type        = number
  description = "Days the replay Lambda's CloudWatch logs are kept."
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "kms_deletion_window_days" {
  type        = number
  description = "Days the KMS key stays recoverable after `terraform destroy` schedules its deletion (7-30)."
  default     = 30

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30
    error_message = "kms_deletion_window_days must be between 7 and 30."
  }
}

variable "secret_recovery_window_days" {
  type        = number
  description = "Days a deleted source-token secret can be restored: 0 deletes it at once, else 7-30."
  default     = 30

  validation {
    condition     = var.secret_recovery_window_days == 0 || (var.secret_recovery_window_days >= 7 && var.secret_recovery_window_days <= 30)
    error_message = "secret_recovery_window_days must be 0 or between 7 and 30."
  }
}

# --- the publisher (outbox -> sink) --------------------------------------------------------------

variable "publish_sink" {
  type        = string
  description = <<-EOT
    Where the publish job sends every pipeline's events (its --sink, a default a run may
    override): kinesis:<stream ARN>, sqs:<queue ARN>, sns:<topic ARN>, eventbridge:<event bus ARN>,
    kafka:<host:port,...>/<topic>, or file:s3://<bucket>/<prefix> (JSONL files). AWS sinks are
    given by ARN because the publisher's role may send to exactly the ARNs configured here and in
    publish_entity_sinks. Required: there is no sensible place to send a deployment's events by
    default, and a default that silently piles files up nobody reads would be worse than a plan
    that asks for one.
  EOT

  validation {
    condition     = can(regex(local.sink_uri_pattern, var.publish_sink))
    error_message = "publish_sink must be kinesis:<stream ARN>, sqs:<queue ARN>, sns:<topic ARN>, eventbridge:<event bus ARN>, kafka:<host:port,...>/<topic> or file:s3://<bucket>/<prefix>, e.g. kinesis:arn:aws:kinesis:eu-west-1:123456789012:stream/events."
  }

  validation {
    condition = alltrue([
      for match in regexall("^file:s3://[^/]+/(.*?)/*$", var.publish_sink) :
      !startswith("${var.warehouse_prefix}/", "${match[0]}/") && !anytrue([
        for table in local.warehouse_table_roots : startswith("${match[0]}/", "${var.warehouse_prefix}/${table}/")
      ])
    ])
    error_message = "A file: publish_sink may not be the warehouse_prefix, above it, or inside its tables (raw, normalized, outbox, quarantine, runs, requests, dead_letter, _publish): the publisher may write everything under its sink's prefix. Use e.g. file:s3://<bucket>/<warehouse_prefix>/published."
  }
}

variable "publish_entity_sinks" {
  type        = map(string)
  description = "Per-pipeline sinks overriding publish_sink (the publish job's --entity_sinks, as JSON; a run may override it): pipeline (entity) name => sink URI of the same forms as publish_sink. Every key must be a pipeline of var.pipelines."
  default     = {}

  validation {
    condition     = alltrue([for uri in values(var.publish_entity_sinks) : can(regex(local.sink_uri_pattern, uri))])
    error_message = "Each publish_entity_sinks value must be kinesis:<stream ARN>, sqs:<queue ARN>, sns:<topic ARN>, eventbridge:<event bus ARN>, kafka:<host:port,...>/<topic> or file:s3://<bucket>/<prefix>."
  }

  validation {
    condition     = alltrue([for entity in keys(var.publish_entity_sinks) : contains(keys(var.pipelines), entity)])
    error_message = "Each publish_entity_sinks key must be a pipeline of var.pipelines (an entity name)."
  }

  validation {
    condition = alltrue(flatten([
      for uri in values(var.publish_entity_sinks) : [
        for match in regexall("^file:s3://[^/]+/(.*?)/*$", uri) :
        !startswith("${var.warehouse_prefix}/", "${match[0]}/") && !anytrue([
          for table in local.warehouse_table_roots : startswith("${match[0]}/", "${var.warehouse_prefix}/${table}/")
        ])
      ]
    ]))
    error_message = "A file: sink in publish_entity_sinks may not be the warehouse_prefix, above it, or inside its tables (raw, normalized, outbox, quarantine, runs, requests, dead_letter, _publish)."
  }
}

variable "publish_sink_kms_key_arns" {
  type        = list(string)
  description = "ARNs of the customer-managed KMS keys the sinks are encrypted with (an SSE-KMS queue, topic, stream, bus or file bucket under a key other than this deployment's): the publisher gets kms:GenerateDataKey and kms:Decrypt on them. Empty for none."
  default     = []

  validation {
    condition     = alltrue([for arn in var.publish_sink_kms_key_arns : can(regex("^arn:aws(-[a-z]+)*:kms:[a-z]{2}(-[a-z]+)+-[0-9]+:[0-9]{12}:key/[A-Za-z0-9-]+$", arn))])
    error_message = "publish_sink_kms_key_arns must hold KMS key ARNs, e.g. arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab."
  }
}

variable "publish_fail_on_dead_letter" {
  type        = bool
  description = "The publish job's default --fail_on_dead_letter: whether a run that dead-letters an event fails (and alerts) instead of succeeding with the event in dead_letter/<entity>."
  default     = false
}

variable "publish_schedule" {
  type        = string
  description = "When the publish job starts on its own, besides after each normalize: a Glue cron expression in UTC. It catches up whatever a cascade did not publish."
  default     = "cron(0/15 * * * ? *)"

  validation {
    condition     = can(regex("^cron\\(\\S+ \\S+ \\S+ \\S+ \\S+ \\S+\\)$", var.publish_schedule))
    error_message = "publish_schedule must be a six-field Glue cron expression, e.g. cron(0/15 * * * ? *) for every 15 minutes."
  }
}

variable "enable_publish_schedule" {
  type        = bool
  description = "Whether the publish job's schedule is active. The cascades after normalize start it either way."
  default     = true
}
