# The three buckets of a deployment, plus the bucket their access logs go to:
#   warehouse    the Delta tables (raw/, normalized/, outbox/, runs/, quarantine/) and requests/ under one prefix
#   artifacts    what the jobs and the Lambda run: glue_jobs/*.py, dist/*.whl, dist/*.zip, and
#                Glue's --TempDir (glue-temp/)
#   uploads      id files the replay trigger uploads for --ids_file; they expire after N days
# Every bucket: KMS by default, public access blocked, ACLs disabled, versioned, TLS only,
# incomplete multipart uploads aborted, old versions expired, access logged.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  suffix = "${data.aws_caller_identity.current.account_id}-${data.aws_region.current.name}"
  # Purpose => bucket name. Names carry the account and region: S3 names are global.
  names = {
    warehouse = "${var.name_prefix}-warehouse-${local.suffix}"
    artifacts = "${var.name_prefix}-artifacts-${local.suffix}"
    uploads   = "${var.name_prefix}-uploads-${local.suffix}"
  }
}

resource "aws_s3_bucket" "data" {
  #checkov:skip=CKV_AWS_144:Cross-region replication is a disaster-recovery choice per deployment, not a default: the raw table can be re-ingested from the source and the other tables rebuilt by a full replay.
  #checkov:skip=CKV2_AWS_62:Nothing consumes object events; the runs ledger is the audit trail of what the jobs wrote, and Glue job state changes are monitored through EventBridge (modules/monitoring).
  for_each = local.names

  bucket        = each.value
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket" "access_logs" {
  #checkov:skip=CKV_AWS_144:Access logs are kept for audit in the deployment's region; replicating them is a per-organisation choice.
  #checkov:skip=CKV2_AWS_62:Nothing consumes object events of the access-log bucket.
  #checkov:skip=CKV_AWS_145:S3 server access log delivery is documented for SSE-S3 destination buckets; logs are encrypted at rest with SSE-S3 (AES256) and hold request metadata only, no table data.
  bucket        = "${var.name_prefix}-access-logs-${local.suffix}"
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_ownership_controls" "data" {
  for_each = local.names

  bucket = aws_s3_bucket.data[each.key].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_ownership_controls" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "data" {
  for_each = local.names

  bucket                  = aws_s3_bucket.data[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_public_access_block" "access_logs" {
  bucket                  = aws_s3_bucket.access_logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "data" {
  for_each = local.names

  bucket = aws_s3_bucket.data[each.key].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_versioning" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "data" {
  for_each = local.names

  bucket = aws_s3_bucket.data[each.key].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    # One data key per bucket and not per object: far fewer KMS requests from Spark.
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_logging" "data" {
  for_each = local.names

  bucket        = aws_s3_bucket.data[each.key].id
  target_bucket = aws_s3_bucket.access_logs.id
  target_prefix = "${each.key}/"

  # S3 checks, when logging is turned on, that the target bucket lets the logging service write
  # (InvalidTargetBucketForLogging otherwise): its policy must exist first.
  depends_on = [aws_s3_bucket_policy.access_logs]
}

# Warehouse and artifacts share their rules: files VACUUMed out of a Delta table, and older
# scripts, wheels and zips, stay recoverable as noncurrent versions for a while (long enough to
# roll back a deployment). The artifacts bucket also expires Glue's --TempDir files.
resource "aws_s3_bucket_lifecycle_configuration" "versioned" {
  for_each = toset(["warehouse", "artifacts"])

  bucket = aws_s3_bucket.data[each.key].id

  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_days
    }
  }

  rule {
    id     = "expire-noncurrent-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }
  }

  dynamic "rule" {
    for_each = each.key == "artifacts" ? [var.glue_temp_prefix] : []

    content {
      id     = "expire-glue-temp"
      status = "Enabled"

      filter {
        prefix = "${rule.value}/"
      }

      expiration {
        days = var.glue_temp_expiration_days
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.data, aws_s3_bucket_versioning.access_logs]
}

resource "aws_s3_bucket_lifecycle_configuration" "uploads" {
  bucket = aws_s3_bucket.data["uploads"].id

  rule {
    id     = "expire-uploaded-id-files"
    status = "Enabled"

    filter {}

    expiration {
      days = var.uploads_expiration_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 1
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.data, aws_s3_bucket_versioning.access_logs]
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    id     = "expire-access-logs"
    status = "Enabled"

    filter {}

    expiration {
      days = var.access_log_expiration_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 1
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.data, aws_s3_bucket_versioning.access_logs]
}

data "aws_iam_policy_document" "data_bucket" {
  for_each = local.names

  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.data[each.key].arn,
      "${aws_s3_bucket.data[each.key].arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

data "aws_iam_policy_document" "access_logs" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.access_logs.arn,
      "${aws_s3_bucket.access_logs.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  # Server access log delivery is granted by bucket policy (ACLs are disabled), only for this
  # account's buckets.
  statement {
    sid       = "S3ServerAccessLogDelivery"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.access_logs.arn}/*"]

    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [for bucket in aws_s3_bucket.data : bucket.arn]
    }
  }
}

resource "aws_s3_bucket_policy" "data" {
  for_each = local.names

  bucket = aws_s3_bucket.data[each.key].id
  policy = data.aws_iam_policy_document.data_bucket[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.data]
}

resource "aws_s3_bucket_policy" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  policy = data.aws_iam_policy_document.access_logs.json

  depends_on = [aws_s3_bucket_public_access_block.access_logs]
}
