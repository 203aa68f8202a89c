output "project_id" {
  description = "Project of the jobs (gcp-credentials block project)."
  value       = var.project_id
}

output "dispatcher_service_account_email" {
  description = "The dispatcher's service account."
  value       = google_service_account.dispatcher.email
}

output "runtime_service_account_email" {
  description = "Service account flow-run jobs run as (cloud-run-v2:push job variable service_account_name)."
  value       = local.runtime_email
}

output "service_account_key_json" {
  description = "JSON key of the dispatcher's service account (gcp-credentials block service_account_info), if create_key."
  value       = try(base64decode(google_service_account_key.dispatcher[0].private_key), null)
  sensitive   = true
}

output "gcp_credentials_block" {
  description = "Fields of a Prefect gcp-credentials block: the key if one was created; otherwise only the project (the dispatcher then uses Application Default Credentials, e.g. workload identity)."
  sensitive   = true
  value = {
    project              = var.project_id
    service_account_info = try(jsondecode(base64decode(google_service_account_key.dispatcher[0].private_key)), null)
  }
}

output "artifact_registry_url" {
  description = "Docker repository for flow images, if create_artifact_registry: <region>-docker.pkg.dev/<project>/<repository>."
  value       = try("${google_artifact_registry_repository.flows[0].location}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.flows[0].repository_id}", null)
}

output "cloud_run_job_variables" {
  description = "Defaults to put in a cloud-run-v2:push pool's base job template (or a deployment's job_variables)."
  value = {
    region               = var.region
    service_account_name = local.runtime_email
  }
}
