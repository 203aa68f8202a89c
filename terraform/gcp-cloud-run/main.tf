# Credentials for the dispatcher on Google Cloud Run jobs (v2): a service account
# with a custom role holding exactly the permissions the provider calls, that may act
# as (only) the runtime service account of flow-run jobs; optionally a key for it and
# an Artifact Registry repository. Narrower than Prefect's `--provision-infra`
# (roles/run.developer) for cloud-run-v2:push pools.

locals {
  runtime_email = var.create_runtime_service_account ? google_service_account.runtime[0].email : var.runtime_service_account_email
  runtime_name  = local.runtime_email == null ? "" : "projects/${var.project_id}/serviceAccounts/${local.runtime_email}"

  apis = var.enable_apis ? toset(concat(
    ["run.googleapis.com", "iam.googleapis.com"],
    var.create_artifact_registry ? ["artifactregistry.googleapis.com"] : [],
    length(var.runtime_secret_ids) > 0 ? ["secretmanager.googleapis.com"] : [],
  )) : toset([])
}

resource "google_project_service" "this" {
  for_each = local.apis

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

# -- dispatcher ----------------------------------------------------------------------------

resource "google_service_account" "dispatcher" {
  project      = var.project_id
  account_id   = var.dispatcher_account_id
  display_name = "Prefect push dispatcher"
  description  = "Creates, runs, watches and deletes the Cloud Run jobs of Prefect flow runs."

  depends_on = [google_project_service.this]
}

# Exactly the Admin API v2 permissions the Cloud Run provider calls, nothing broader:
# tests/providers/test_cloud_run_terraform.py derives this list from the emulator's permission
# counter after every provider path has run, and fails when the two differ. roles/run.developer
# would add job updates, IAM policy reads, services, revisions and more. Jobs are created on
# demand (one per configuration), so the role is project-wide rather than per job.
resource "google_project_iam_custom_role" "dispatcher" {
  project     = var.project_id
  role_id     = var.dispatcher_role_id
  title       = "Prefect push dispatcher (Cloud Run jobs)"
  description = "Create, run with overrides, watch, cancel and delete the Cloud Run jobs of Prefect flow runs."
  permissions = [
    "run.executions.cancel",     # stop: cancellation and the runtime cap
    "run.executions.list",       # the watch (jobs/-/executions) and finding a re-driven attempt
    "run.jobs.create",           # one job per distinct configuration
    "run.jobs.delete",           # housekeeping deletes idle jobs, and jobs that cannot become ready
    "run.jobs.get",              # why a job refuses :run (still being created, or broken)
    "run.jobs.list",             # housekeeping finds idle jobs
    "run.jobs.run",              # one :run per flow run attempt
    "run.jobs.runWithOverrides", # the run's env, args, timeout and task count
  ]

  depends_on = [google_project_service.this]
}

resource "google_project_iam_member" "dispatcher_run" {
  project = var.project_id
  role    = google_project_iam_custom_role.dispatcher.id
  member  = google_service_account.dispatcher.member
}

resource "google_project_iam_member" "dispatcher_log_viewer" {
  count = var.allow_log_reading ? 1 : 0

  project = var.project_id
  role    = "roles/logging.viewer"
  member  = google_service_account.dispatcher.member
}

# actAs on the runtime service account only (not project-wide serviceAccountUser).
resource "google_service_account_iam_member" "dispatcher_acts_as_runtime" {
  service_account_id = local.runtime_name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.dispatcher.member

  lifecycle {
    precondition {
      condition     = local.runtime_email != null
      error_message = "Set runtime_service_account_email when create_runtime_service_account is false."
    }
  }
}

resource "google_service_account_iam_member" "workload_identity" {
  for_each = toset(var.workload_identity_members)

  service_account_id = google_service_account.dispatcher.name
  role               = "roles/iam.workloadIdentityUser"
  member             = each.value
}

resource "google_service_account_iam_member" "token_creator" {
  for_each = toset(var.token_creator_members)

  service_account_id = google_service_account.dispatcher.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = each.value
}

resource "google_service_account_key" "dispatcher" {
  count = var.create_key ? 1 : 0

  service_account_id = google_service_account.dispatcher.name
}

# -- runtime service account of flow-run jobs ---------------------------------------------------

resource "google_service_account" "runtime" {
  count = var.create_runtime_service_account ? 1 : 0

  project      = var.project_id
  account_id   = var.runtime_account_id
  display_name = "Prefect flow runs (Cloud Run)"
  description  = "Identity of the Cloud Run jobs the Prefect push dispatcher starts."

  depends_on = [google_project_service.this]
}

resource "google_project_iam_member" "runtime" {
  for_each = var.create_runtime_service_account ? toset(var.runtime_project_roles) : toset([])

  project = var.project_id
  role    = each.value
  member  = google_service_account.runtime[0].member
}

resource "google_secret_manager_secret_iam_member" "runtime" {
  for_each = toset(var.runtime_secret_ids)

  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${local.runtime_email}"
}

# -- Artifact Registry (optional) -----------------------------------------------------------------

resource "google_artifact_registry_repository" "flows" {
  count = var.create_artifact_registry ? 1 : 0

  project       = var.project_id
  location      = var.region
  repository_id = var.artifact_registry_repository_id
  format        = "DOCKER"
  description   = "Images of Prefect flows run by the push dispatcher."
  labels        = var.labels

  depends_on = [google_project_service.this]
}

resource "google_artifact_registry_repository_iam_member" "writers" {
  for_each = var.create_artifact_registry ? toset(var.artifact_registry_writers) : toset([])

  project    = var.project_id
  location   = google_artifact_registry_repository.flows[0].location
  repository = google_artifact_registry_repository.flows[0].name
  role       = "roles/artifactregistry.writer"
  member     = each.value
}
