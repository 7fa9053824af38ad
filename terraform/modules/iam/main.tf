# One role per Glue job (two per pipeline) and one for the replay Lambda, each with only what it
# needs:
# - a Glue job reads its own script, the wheel and extra jars; uses its --TempDir; reads the
#   warehouse tables it reads and writes the tables it writes, by table path (var.jobs[*].reads /
#   .writes: ingest writes raw/<entity>, quarantine/<entity>/ingest and runs/ingest/<entity>;
#   normalize reads raw/<entity> and writes normalized/<entity>, outbox/<entity>,
#   quarantine/<entity>/normalize and runs/normalize/<entity>: no table has two writers);
#   claims request ids in requests/ (get, conditional put); reads
#   uploaded id files (--ids_file); reads the run properties (the replay request) of its own
#   pipeline's workflows; writes its logs and metrics; and, for the ingest job of a pipeline that
#   has one, reads that pipeline's source token secret.
# - the publish job (one for all pipelines) reads its script, the wheel and jars, the outboxes
#   (outbox/*); writes only dead_letter/*, runs/publish/* and its own state _publish/*
#   (checkpoints, leases); and may send to exactly the sinks configured (var.publish_sinks: a
#   statement per sink kind in use, on those ARNs only; a file: sink's S3 prefix). It claims no
#   request and reads no run properties, id files or secrets. Its tables are granted by folder,
#   not per entity: it publishes every pipeline installed in the wheel (glue_replay.registry),
#   which may be more than var.pipelines (the bundled examples always are), and a lease it could
#   not take would fail the whole run.
# - the Lambda starts and inspects the jobs and workflows of every pipeline, uploads and reads
#   id files.
# Resources are always these jobs', workflows', buckets', secrets' and key's ARNs; the two "*"
# resources below are the actions AWS offers no resource scoping for.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  warehouse_objects = "${var.warehouse_bucket_arn}/${var.warehouse_prefix}"

  # The tables each role reads and writes: every Glue job's (var.jobs) and the publisher's, whose
  # "tables" are the folders of every entity's (outbox/<entity>, dead_letter/<entity>, ...).
  role_tables = merge(
    { for key, job in var.jobs : key => { reads = job.reads, writes = job.writes } },
    { publish = { reads = ["outbox"], writes = ["dead_letter", "runs/publish", "_publish"] } },
  )

  # A table's objects and its key: Glue 5.1 reads and writes s3:// through Hadoop's S3A, which
  # HEADs "<dir>" and "<dir>/" to tell a folder from a file ("<dir>/" is covered by "<dir>/*").
  # A table is a path: raw/customers, runs/ingest/customers.
  table_objects = {
    for key, job in local.role_tables : key => {
      read = flatten([
        for table in distinct(concat(job.reads, job.writes)) : [
          "${local.warehouse_objects}/${table}",
          "${local.warehouse_objects}/${table}/*",
        ]
      ])
      write = flatten([
        for table in job.writes : [
          "${local.warehouse_objects}/${table}",
          "${local.warehouse_objects}/${table}/*",
        ]
      ])
    }
  }
  # The folders above a job's tables (the warehouse prefix itself, raw above raw/customers): S3A
  # HEADs them to check that they are folders, not files. Only the keys it asks for, which hold
  # no data: the exact key and its directory marker "<dir>/". (The "<dir>_$folder$" markers of
  # EMRFS, which Glue 5.1 no longer uses, are not granted.)
  folder_markers = {
    for key, job in local.role_tables : key => flatten([
      # Every folder above a table (runs/ and runs/ingest/ above runs/ingest/<entity>).
      for folder in concat([local.warehouse_objects], distinct(flatten([
        for table in concat(job.reads, job.writes) : [
          for depth in range(1, length(split("/", table))) :
          "${local.warehouse_objects}/${join("/", slice(split("/", table), 0, depth))}"
        ]
      ]))) : [folder, "${folder}/"]
    ])
  }
  glue_log_groups  = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws-glue/*"
  lambda_log_group = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${var.lambda_function_name}"
  lambda_dlq_arn   = "arn:${local.partition}:sqs:${local.region}:${local.account_id}:${var.lambda_dlq_name}"

  # The publisher's sinks by kind: the ARNs (the URI without its "<kind>:") of each AWS kind in
  # use, and each file: sink's bucket and key prefix. A kind nobody uses gets no statement.
  sink_targets = {
    for kind in ["kinesis", "sqs", "sns", "eventbridge", "file"] : kind => sort(distinct([
      for uri in var.publish_sinks : trimprefix(uri, "${kind}:") if startswith(uri, "${kind}:")
    ]))
  }
  file_sinks = [
    for target in local.sink_targets.file : {
      bucket_arn = "arn:${local.partition}:s3:::${regex("^s3://([^/]+)/", target)[0]}"
      prefix     = regex("^s3://[^/]+/(.*?)/*$", target)[0]
    }
  ]
  # Bucket ARN => the file sink prefixes in it (one ListBucket statement per bucket).
  file_sink_prefixes = { for sink in local.file_sinks : sink.bucket_arn => sink.prefix... }
  file_sink_objects = flatten([
    for sink in local.file_sinks : [
      "${sink.bucket_arn}/${sink.prefix}",
      "${sink.bucket_arn}/${sink.prefix}/*",
    ]
  ])
  # The keys of the folders above a file sink's prefix (S3A HEADs them).
  file_sink_folder_markers = distinct(flatten([
    for sink in local.file_sinks : [
      for depth in range(1, length(split("/", sink.prefix))) : [
        for suffix in ["", "/"] :
        "${sink.bucket_arn}/${join("/", slice(split("/", sink.prefix), 0, depth))}${suffix}"
      ]
    ]
  ]))

  # Glue ARNs from the names (the names come from modules/glue, so the roles' policies follow
  # the resources they name).
  glue_arn      = "arn:${local.partition}:glue:${local.region}:${local.account_id}"
  job_arns      = { for key, name in var.job_names : key => "${local.glue_arn}:job/${name}" }
  workflow_arns = { for entity, workflows in var.workflow_names : entity => { for kind, name in workflows : kind => "${local.glue_arn}:workflow/${name}" } }
}

# --- Glue jobs -------------------------------------------------------------------------------

data "aws_iam_policy_document" "glue_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["glue.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "glue" {
  for_each = var.jobs

  name               = "${var.name_prefix}-${each.key}"
  description        = "Runs the ${var.name_prefix}-${each.key} Glue job."
  assume_role_policy = data.aws_iam_policy_document.glue_assume.json
}

data "aws_iam_policy_document" "glue" {
  for_each = var.jobs

  statement {
    sid     = "ReadCode"
    actions = ["s3:GetObject"]
    resources = concat(
      ["${var.artifacts_bucket_arn}/${each.value.script}", "${var.artifacts_bucket_arn}/${var.wheel_key}"],
      [for key in var.extra_jar_keys : "${var.artifacts_bucket_arn}/${key}"],
    )
  }

  statement {
    sid       = "UseTempDir"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${var.artifacts_bucket_arn}/${var.glue_temp_prefix}/*"]
  }

  statement {
    sid       = "ListTempDir"
    actions   = ["s3:ListBucket"]
    resources = [var.artifacts_bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [var.glue_temp_prefix, "${var.glue_temp_prefix}/*"]
    }
  }

  statement {
    sid       = "ListWarehouse"
    actions   = ["s3:ListBucket"]
    resources = [var.warehouse_bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [var.warehouse_prefix, "${var.warehouse_prefix}/*"]
    }
  }

  # The request registry: each job reads a request's claim and creates it when absent
  # (a conditional PutObject); it never deletes or lists one.
  statement {
    sid       = "ClaimRequests"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${local.warehouse_objects}/requests/*"]
  }

  statement {
    sid       = "HeadTableFolders"
    actions   = ["s3:GetObject"]
    resources = local.folder_markers[each.key]
  }

  statement {
    sid       = "ReadTables"
    actions   = ["s3:GetObject"]
    resources = local.table_objects[each.key].read
  }

  statement {
    sid       = "WriteTables"
    actions   = ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = local.table_objects[each.key].write
  }

  statement {
    sid       = "ReadUploadedIdFiles"
    actions   = ["s3:GetObject"]
    resources = ["${var.uploads_bucket_arn}/${var.uploads_prefix}/*"]
  }

  statement {
    sid       = "UseTheKey"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [var.kms_key_arn]
  }

  # A job started by a workflow trigger gets --WORKFLOW_NAME and --WORKFLOW_RUN_ID and reads the
  # request (replay_mode, date, ids, ...) from that run's properties: its own pipeline's runs.
  statement {
    sid       = "ReadReplayRequest"
    actions   = ["glue:GetWorkflowRunProperties"]
    resources = values(local.workflow_arns[each.value.entity])
  }

  statement {
    sid = "WriteLogs"
    actions = [
      "logs:CreateLogGroup",
      "logs:CreateLogStream",
      "logs:PutLogEvents",
      "logs:AssociateKmsKey",
    ]
    resources = [local.glue_log_groups, "${local.glue_log_groups}:log-stream:*"]
  }

  # cloudwatch:PutMetricData has no resource-level permissions: AWS requires "*". The namespace
  # condition keeps it to Glue's metrics (--enable-metrics).
  statement {
    sid       = "PutGlueMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = ["Glue"]
    }
  }

  dynamic "statement" {
    for_each = each.value.reads_source_token ? [1] : []

    content {
      sid       = "ReadSourceToken"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [var.source_token_secret_arns[each.value.entity]]
    }
  }

  dynamic "statement" {
    for_each = var.dynamodb_log_store_table_arn == null ? [] : [1]

    content {
      sid = "UseDeltaLogStoreTable"
      actions = [
        "dynamodb:DescribeTable",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:Query",
      ]
      resources = [var.dynamodb_log_store_table_arn]
    }
  }
}

resource "aws_iam_role_policy" "glue" {
  for_each = var.jobs

  name   = "${var.name_prefix}-${each.key}"
  role   = aws_iam_role.glue[each.key].id
  policy = data.aws_iam_policy_document.glue[each.key].json
}

# --- The publish job --------------------------------------------------------------------------

resource "aws_iam_role" "publish" {
  name               = "${var.name_prefix}-publish"
  description        = "Runs the ${var.name_prefix}-publish Glue job, which sends every pipeline's outbox events to its sink."
  assume_role_policy = data.aws_iam_policy_document.glue_assume.json
}

data "aws_iam_policy_document" "publish" {
  statement {
    sid     = "ReadCode"
    actions = ["s3:GetObject"]
    resources = concat(
      ["${var.artifacts_bucket_arn}/${var.publish_script}", "${var.artifacts_bucket_arn}/${var.wheel_key}"],
      [for key in var.extra_jar_keys : "${var.artifacts_bucket_arn}/${key}"],
    )
  }

  statement {
    sid       = "UseTempDir"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${var.artifacts_bucket_arn}/${var.glue_temp_prefix}/*"]
  }

  statement {
    sid       = "ListTempDir"
    actions   = ["s3:ListBucket"]
    resources = [var.artifacts_bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [var.glue_temp_prefix, "${var.glue_temp_prefix}/*"]
    }
  }

  # Also how the lease is found: the lease-<n> objects under _publish/<entity>/ are listed.
  statement {
    sid       = "ListWarehouse"
    actions   = ["s3:ListBucket"]
    resources = [var.warehouse_bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [var.warehouse_prefix, "${var.warehouse_prefix}/*"]
    }
  }

  statement {
    sid       = "HeadTableFolders"
    actions   = ["s3:GetObject"]
    resources = local.folder_markers["publish"]
  }

  # The outboxes (their change feed, read incrementally) and the publisher's own tables.
  statement {
    sid       = "ReadTables"
    actions   = ["s3:GetObject"]
    resources = local.table_objects["publish"].read
  }

  # dead_letter/*, runs/publish/* and _publish/* (the streaming checkpoints and the leases,
  # created with a conditional put): never an outbox.
  statement {
    sid       = "WriteTables"
    actions   = ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = local.table_objects["publish"].write
  }

  statement {
    sid       = "UseTheKey"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [var.kms_key_arn]
  }

  statement {
    sid = "WriteLogs"
    actions = [
      "logs:CreateLogGroup",
      "logs:CreateLogStream",
      "logs:PutLogEvents",
      "logs:AssociateKmsKey",
    ]
    resources = [local.glue_log_groups, "${local.glue_log_groups}:log-stream:*"]
  }

  # cloudwatch:PutMetricData has no resource-level permissions: AWS requires "*". The namespace
  # condition keeps it to Glue's metrics (--enable-metrics).
  statement {
    sid       = "PutGlueMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = ["Glue"]
    }
  }

  dynamic "statement" {
    for_each = var.dynamodb_log_store_table_arn == null ? [] : [1]

    content {
      sid = "UseDeltaLogStoreTable"
      actions = [
        "dynamodb:DescribeTable",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:Query",
      ]
      resources = [var.dynamodb_log_store_table_arn]
    }
  }

  # --- the sinks: a statement per kind in use, on exactly the configured ARNs ---

  dynamic "statement" {
    for_each = length(local.sink_targets.kinesis) == 0 ? [] : [1]

    content {
      sid       = "PutKinesisRecords"
      actions   = ["kinesis:PutRecords", "kinesis:DescribeStreamSummary"]
      resources = local.sink_targets.kinesis
    }
  }

  dynamic "statement" {
    for_each = length(local.sink_targets.sqs) == 0 ? [] : [1]

    content {
      sid       = "SendSqsMessages"
      actions   = ["sqs:SendMessage", "sqs:GetQueueUrl"]
      resources = local.sink_targets.sqs
    }
  }

  dynamic "statement" {
    for_each = length(local.sink_targets.sns) == 0 ? [] : [1]

    content {
      sid       = "PublishSnsMessages"
      actions   = ["sns:Publish"]
      resources = local.sink_targets.sns
    }
  }

  dynamic "statement" {
    for_each = length(local.sink_targets.eventbridge) == 0 ? [] : [1]

    content {
      sid       = "PutEventBridgeEvents"
      actions   = ["events:PutEvents"]
      resources = local.sink_targets.eventbridge
    }
  }

  # A file: sink is JSONL files written with Spark under its prefix (and Spark's _temporary/).
  dynamic "statement" {
    for_each = length(local.file_sinks) == 0 ? [] : [1]

    content {
      sid       = "ReadFileSink"
      actions   = ["s3:GetObject"]
      resources = concat(local.file_sink_objects, local.file_sink_folder_markers)
    }
  }

  dynamic "statement" {
    for_each = length(local.file_sinks) == 0 ? [] : [1]

    content {
      sid       = "WriteFileSink"
      actions   = ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
      resources = local.file_sink_objects
    }
  }

  dynamic "statement" {
    for_each = keys(local.file_sink_prefixes)

    content {
      sid       = "ListFileSink${statement.key}"
      actions   = ["s3:ListBucket"]
      resources = [statement.value]

      condition {
        test     = "StringLike"
        variable = "s3:prefix"
        values   = flatten([for prefix in local.file_sink_prefixes[statement.value] : [prefix, "${prefix}/*"]])
      }
    }
  }

  # Sinks (queues, topics, streams, buses, buckets) encrypted with their own customer-managed keys.
  dynamic "statement" {
    for_each = length(var.publish_sink_kms_key_arns) == 0 ? [] : [1]

    content {
      sid       = "UseTheSinksKeys"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = var.publish_sink_kms_key_arns
    }
  }
}

resource "aws_iam_role_policy" "publish" {
  name   = "${var.name_prefix}-publish"
  role   = aws_iam_role.publish.id
  policy = data.aws_iam_policy_document.publish.json
}

# --- The replay Lambda -----------------------------------------------------------------------

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "lambda" {
  name               = "${var.name_prefix}-trigger"
  description        = "Runs the ${var.lambda_function_name} Lambda, which validates replay requests and starts the Glue jobs of every pipeline."
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "lambda" {
  # Every pipeline's replay workflow: the request names its entity. GetWorkflowRun watches the
  # started run until Glue accepts (or refuses, for concurrency) its first job run.
  statement {
    sid       = "StartReplayWorkflows"
    actions   = ["glue:StartWorkflowRun", "glue:GetWorkflowRun"]
    resources = [for workflows in local.workflow_arns : workflows.replay]
  }

  # GetJobRuns and GetWorkflowRuns are the busy check: a replay must not race a run (BAU or
  # another replay) that holds a job, so the trigger lists the runs in progress and reports the
  # one that holds it instead of starting anything.
  statement {
    sid       = "ListWorkflowRuns"
    actions   = ["glue:GetWorkflowRuns"]
    resources = flatten([for workflows in local.workflow_arns : values(workflows)])
  }

  statement {
    sid       = "StartAndInspectJobRuns"
    actions   = ["glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns"]
    resources = values(local.job_arns)
  }

  statement {
    sid       = "UploadIdFiles"
    actions   = ["s3:PutObject"]
    resources = ["${var.uploads_bucket_arn}/${var.uploads_prefix}/*"]
  }

  # A request may name an id file already uploaded there (ids_file: s3://...); the trigger
  # validates its ids before starting anything, as the jobs would.
  statement {
    sid       = "ReadIdFiles"
    actions   = ["s3:GetObject"]
    resources = ["${var.uploads_bucket_arn}/${var.uploads_prefix}/*"]
  }

  # Uploads are SSE-KMS, the environment and the dead-letter queue are encrypted with the key.
  statement {
    sid       = "UseTheKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }

  statement {
    sid       = "WriteLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${local.lambda_log_group}:*"]
  }

  statement {
    sid       = "DeadLetterQueue"
    actions   = ["sqs:SendMessage"]
    resources = [local.lambda_dlq_arn]
  }

  # X-Ray's PutTraceSegments and PutTelemetryRecords have no resource-level permissions: AWS
  # requires "*" (the same statement as the AWSXRayDaemonWriteAccess managed policy).
  statement {
    sid       = "WriteTraces"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "lambda" {
  name   = "${var.name_prefix}-trigger"
  role   = aws_iam_role.lambda.id
  policy = data.aws_iam_policy_document.lambda.json
}
