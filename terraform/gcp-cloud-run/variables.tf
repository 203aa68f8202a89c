variable "project_id" {
  description = "Project the Cloud Run jobs of flow runs are created in."
  type        = string
}

variable "region" {
  description = "Region of the Artifact Registry repository; use the same as the cloud-run-v2:push job variable region."
  type        = string
  default     = "us-central1"
}

variable "enable_apis" {
  description = "Enable the Cloud Run, IAM (and Artifact Registry) APIs in the project. Never disabled on destroy."
  type        = bool
  default     = true
}

# -- dispatcher identity ----------------------------------------------------------------

variable "dispatcher_account_id" {
  description = "Account id of the dispatcher's service account (<id>@<project>.iam.gserviceaccount.com)."
  type        = string
  default     = "prefect-dispatcher"

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{4,28}[a-z0-9]$", var.dispatcher_account_id))
    error_message = "dispatcher_account_id must be 6-30 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "dispatcher_role_id" {
  description = "Id of the custom role with the Cloud Run permissions the dispatcher calls (projects/<project>/roles/<id>)."
  type        = string
  default     = "prefectPushDispatcher"

  validation {
    condition     = can(regex("^[a-zA-Z0-9_.]{3,64}$", var.dispatcher_role_id))
    error_message = "dispatcher_role_id must be 3-64 letters, digits, underscores or periods."
  }
}

variable "create_key" {
  description = "Create a JSON key for the dispatcher's service account (output service_account_key_json). Prefer workload identity: keys are long-lived and stored in the Terraform state."
  type        = bool
  default     = false
}

variable "workload_identity_members" {
  description = "Members allowed to act as the dispatcher's service account through workload identity (roles/iam.workloadIdentityUser), e.g. \"serviceAccount:<project>.svc.id.goog[prefect/dispatcher]\" or a principalSet:// of a workload identity pool."
  type        = list(string)
  default     = []
}

variable "token_creator_members" {
  description = "Members allowed to impersonate the dispatcher's service account (roles/iam.serviceAccountTokenCreator), e.g. the service account of the VM the dispatcher runs on."
  type        = list(string)
  default     = []
}

variable "allow_log_reading" {
  description = "Grant roles/logging.viewer on the project (project-wide read of logs). The provider itself reads no logs: crash messages carry the execution's log link."
  type        = bool
  default     = false
}

# -- runtime identity of flow-run jobs ----------------------------------------------------------

variable "create_runtime_service_account" {
  description = "Create the service account flow-run jobs run as (job variable service_account_name). If false, set runtime_service_account_email."
  type        = bool
  default     = true
}

variable "runtime_account_id" {
  description = "Account id of the created runtime service account."
  type        = string
  default     = "prefect-flow-runs"

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{4,28}[a-z0-9]$", var.runtime_account_id))
    error_message = "runtime_account_id must be 6-30 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "runtime_service_account_email" {
  description = "Existing service account flow-run jobs run as, when create_runtime_service_account is false (e.g. the Compute Engine default service account)."
  type        = string
  default     = null
}

variable "runtime_project_roles" {
  description = "Project roles granted to the created runtime service account (what flow code may do), e.g. [\"roles/storage.objectUser\"]."
  type        = list(string)
  default     = []
}

variable "runtime_secret_ids" {
  description = "Secret Manager secret ids (short names or projects/<p>/secrets/<s>) the runtime service account may read: env_from_secrets, prefect_api_key_secret, prefect_api_auth_string_secret."
  type        = list(string)
  default     = []
}

# -- Artifact Registry ---------------------------------------------------------------------

variable "create_artifact_registry" {
  description = "Create a Docker Artifact Registry repository for flow images (Cloud Run pulls from it in the same project without extra grants)."
  type        = bool
  default     = false
}

variable "artifact_registry_repository_id" {
  description = "Id of the created repository."
  type        = string
  default     = "prefect-flows"
}

variable "artifact_registry_writers" {
  description = "Members allowed to push images to the created repository (roles/artifactregistry.writer), e.g. a CI service account."
  type        = list(string)
  default     = []
}

variable "labels" {
  description = "Labels of the created Artifact Registry repository."
  type        = map(string)
  default     = {}
}
