variable "name_prefix" {
  type        = string
  description = "Prefix of every resource name; the key's alias is alias/<name_prefix>."
}

variable "deletion_window_in_days" {
  type        = number
  description = "Days a deleted key stays recoverable before AWS destroys it (7-30)."
  default     = 30

  validation {
    condition     = var.deletion_window_in_days >= 7 && var.deletion_window_in_days <= 30
    error_message = "deletion_window_in_days must be between 7 and 30."
  }
}
