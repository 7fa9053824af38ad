# Uploads what `make package` builds and what the jobs run, each under its path relative to the
# repository root, so an object's key says where it came from:
#   glue_jobs/<script>.py                     one script per Glue job (var.jobs), two per pipeline
#   dist/glue_replay-<version>-py3-none-any.whl  the library (--additional-python-modules)
#   dist/glue_replay_lambda.zip               the replay Lambda's package
#   <extra jars>                              e.g. Delta's DynamoDB log store, when enabled
#
# source_hash (not etag) triggers re-uploads: with SSE-KMS an object's ETag is not the MD5 of
# its content, so an etag would show a change on every plan.

resource "aws_s3_object" "script" {
  for_each = var.jobs

  bucket      = var.bucket
  key         = each.value.script
  source      = "${var.repo_root}/${each.value.script}"
  source_hash = filemd5("${var.repo_root}/${each.value.script}")
  kms_key_id  = var.kms_key_arn

  content_type = "text/x-python"
}

resource "aws_s3_object" "wheel" {
  bucket      = var.bucket
  key         = var.wheel_file
  source      = "${var.repo_root}/${var.wheel_file}"
  source_hash = filemd5("${var.repo_root}/${var.wheel_file}")
  kms_key_id  = var.kms_key_arn

  content_type = "application/zip"
}

resource "aws_s3_object" "lambda_zip" {
  bucket      = var.bucket
  key         = var.lambda_zip_file
  source      = "${var.repo_root}/${var.lambda_zip_file}"
  source_hash = filemd5("${var.repo_root}/${var.lambda_zip_file}")
  kms_key_id  = var.kms_key_arn

  content_type = "application/zip"
}

resource "aws_s3_object" "extra_jar" {
  for_each = toset(var.extra_jar_files)

  bucket      = var.bucket
  key         = each.value
  source      = "${var.repo_root}/${each.value}"
  source_hash = filemd5("${var.repo_root}/${each.value}")
  kms_key_id  = var.kms_key_arn

  content_type = "application/java-archive"
}
