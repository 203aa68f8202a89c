output "tenant_id" {
  description = "Tenant of the service principal (azure-container-instance-credentials block tenant_id)."
  value       = data.azurerm_subscription.current.tenant_id
}

output "subscription_id" {
  description = "Subscription of the container groups (azure-container-instance:push job variable subscription_id)."
  value       = data.azurerm_subscription.current.subscription_id
}

output "resource_group_name" {
  description = "Resource group of the container groups (job variable resource_group_name)."
  value       = var.resource_group_name
}

output "resource_group_id" {
  description = "Id of that resource group."
  value       = local.resource_group_id
}

output "role_definition_id" {
  description = "The dispatcher's custom role."
  value       = azurerm_role_definition.dispatcher.role_definition_resource_id
}

output "client_id" {
  description = "Application (client) id of the app registration (block client_id)."
  value       = try(azuread_application.dispatcher[0].client_id, null)
}

output "service_principal_object_id" {
  description = "Object id of the service principal."
  value       = try(azuread_service_principal.dispatcher[0].object_id, null)
}

output "client_secret" {
  description = "Client secret (block client_secret). Stored in the Terraform state."
  value       = try(azuread_application_password.dispatcher[0].value, null)
  sensitive   = true
}

output "client_secret_end_date" {
  description = "When the current client secret expires."
  value       = try(azuread_application_password.dispatcher[0].end_date, null)
}

output "aci_credentials_block" {
  description = "Fields of a Prefect azure-container-instance-credentials block (empty fields: the dispatcher uses DefaultAzureCredential, e.g. a managed identity in principal_object_ids)."
  sensitive   = true
  value = {
    client_id     = try(azuread_application.dispatcher[0].client_id, null)
    tenant_id     = data.azurerm_subscription.current.tenant_id
    client_secret = try(azuread_application_password.dispatcher[0].value, null)
  }
}

output "aci_job_variables" {
  description = "Defaults to put in an azure-container-instance:push pool's base job template (subscription_id is a secret string there)."
  value = {
    resource_group_name = var.resource_group_name
    subscription_id     = data.azurerm_subscription.current.subscription_id
  }
}
