output "script_keys" {
  description = "Job key => S3 key of its script in the artifacts bucket."
  value       = { for key, object in aws_s3_object.script : key => object.key }
}

output "wheel_key" {
  description = "S3 key of the library wheel."
  value       = aws_s3_object.wheel.key
}

output "wheel_uri" {
  description = "s3:// URI of the library wheel, for --additional-python-modules."
  value       = "s3://${var.bucket}/${aws_s3_object.wheel.key}"
}

output "lambda_zip_key" {
  description = "S3 key of the Lambda package."
  value       = aws_s3_object.lambda_zip.key
}

output "lambda_zip_version" {
  description = "S3 version id of the Lambda package: a new upload redeploys the function."
  value       = aws_s3_object.lambda_zip.version_id
}

output "extra_jar_keys" {
  description = "S3 keys of the extra jars."
  value       = [for file in var.extra_jar_files : aws_s3_object.extra_jar[file].key]
}

output "extra_jar_uris" {
  description = "s3:// URIs of the extra jars, for --extra-jars."
  value       = [for file in var.extra_jar_files : "s3://${var.bucket}/${aws_s3_object.extra_jar[file].key}"]
}
