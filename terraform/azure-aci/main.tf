# Credentials for the dispatcher on Azure Container Instances: an app registration
# and service principal with a custom role limited to the container group calls the
# dispatcher makes in one resource group (Prefect's own provisioner grants Contributor
# on the resource group instead), and a client secret. The dispatcher creates container
# groups directly, without ARM deployments. tests/providers/test_aci_terraform.py keeps
# the action list equal to what the provider calls on the emulator.

data "azurerm_subscription" "current" {}
data "azuread_client_config" "current" {}

locals {
  resource_group_id = var.create_resource_group ? azurerm_resource_group.this[0].id : data.azurerm_resource_group.existing[0].id

  principal_ids = concat(
    var.create_app_registration ? [azuread_service_principal.dispatcher[0].object_id] : [],
    var.principal_object_ids,
  )
  attach_scopes = concat(var.user_assigned_identity_ids, var.subnet_ids)
}

resource "azurerm_resource_group" "this" {
  count = var.create_resource_group ? 1 : 0

  name     = var.resource_group_name
  location = var.location
  tags     = var.tags
}

data "azurerm_resource_group" "existing" {
  count = var.create_resource_group ? 0 : 1

  name = var.resource_group_name
}

# -- what the dispatcher may do -----------------------------------------------------------------------

resource "azurerm_role_definition" "dispatcher" {
  name        = "${var.name_prefix}-aci-dispatcher-${var.resource_group_name}"
  scope       = local.resource_group_id
  description = "Create, watch, read logs of, stop and delete container groups of Prefect flow runs in one resource group."

  permissions {
    actions = [
      "Microsoft.ContainerInstance/containerGroups/read",
      "Microsoft.ContainerInstance/containerGroups/write",
      "Microsoft.ContainerInstance/containerGroups/delete",
      "Microsoft.ContainerInstance/containerGroups/stop/action",
      "Microsoft.ContainerInstance/containerGroups/containers/logs/read",
      "Microsoft.Resources/subscriptions/resourceGroups/read", # the group's location, once (unless configured)
    ]
    not_actions = []
  }

  assignable_scopes = [local.resource_group_id]

  lifecycle {
    precondition {
      condition     = length(local.principal_ids) > 0
      error_message = "Nobody gets the role: keep create_app_registration = true or set principal_object_ids."
    }
  }
}

resource "azurerm_role_assignment" "dispatcher" {
  count = length(local.principal_ids)

  scope                            = local.resource_group_id
  role_definition_id               = azurerm_role_definition.dispatcher.role_definition_resource_id
  principal_id                     = local.principal_ids[count.index]
  skip_service_principal_aad_check = var.create_app_registration && count.index == 0
}

# Identities and subnets usually live outside the flow-run resource group: a second
# role with only the two "attach" actions, assigned on each listed resource.
resource "azurerm_role_definition" "attach" {
  count = length(local.attach_scopes) > 0 ? 1 : 0

  name        = "${var.name_prefix}-aci-attach-${var.resource_group_name}"
  scope       = data.azurerm_subscription.current.id
  description = "Attach listed user-assigned identities and subnets to container groups of Prefect flow runs."

  permissions {
    actions = [
      # not called by the provider: ARM checks it on a container group PUT naming a user-assigned identity (no provider test attaches one)
      "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
      # not called by the provider: ARM checks it on a container group PUT joining a subnet (no provider test joins one)
      "Microsoft.Network/virtualNetworks/subnets/join/action",
    ]
    not_actions = []
  }

  assignable_scopes = [data.azurerm_subscription.current.id]
}

resource "azurerm_role_assignment" "attach" {
  count = length(local.attach_scopes) > 0 ? length(local.attach_scopes) * length(local.principal_ids) : 0

  scope              = local.attach_scopes[floor(count.index / length(local.principal_ids))]
  role_definition_id = azurerm_role_definition.attach[0].role_definition_resource_id
  principal_id       = local.principal_ids[count.index % length(local.principal_ids)]
}

# -- app registration, service principal, client secret -------------------------------------------

resource "azuread_application" "dispatcher" {
  count = var.create_app_registration ? 1 : 0

  display_name = "${var.name_prefix}-aci"
  owners       = [data.azuread_client_config.current.object_id]
}

resource "azuread_service_principal" "dispatcher" {
  count = var.create_app_registration ? 1 : 0

  client_id = azuread_application.dispatcher[0].client_id
  owners    = [data.azuread_client_config.current.object_id]
}

resource "time_rotating" "client_secret" {
  count = var.create_app_registration ? 1 : 0

  rotation_days = var.client_secret_rotation_days
}

resource "azuread_application_password" "dispatcher" {
  count = var.create_app_registration ? 1 : 0

  application_id = azuread_application.dispatcher[0].id
  display_name   = "${var.name_prefix} (terraform)"
  end_date       = timeadd(time_rotating.client_secret[0].rotation_rfc3339, "${var.client_secret_grace_days * 24}h")

  rotate_when_changed = {
    rotation = time_rotating.client_secret[0].id
  }
}
