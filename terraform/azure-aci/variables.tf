variable "name_prefix" {
  description = "Prefix of the app registration, custom role and secret names."
  type        = string
  default     = "prefect-dispatcher"
}

variable "tags" {
  description = "Tags of the created resource group."
  type        = map(string)
  default     = {}
}

# -- resource group -----------------------------------------------------------------------------

variable "create_resource_group" {
  description = "Create the resource group container groups are deployed to. If false, it must exist."
  type        = bool
  default     = true
}

variable "resource_group_name" {
  description = "Resource group of the container groups (azure-container-instance:push job variable resource_group_name)."
  type        = string
  default     = "prefect-flow-runs"
}

variable "location" {
  description = "Azure region of the created resource group (container groups are created in its region)."
  type        = string
  default     = "eastus"
}

# -- dispatcher identity ----------------------------------------------------------------------------

variable "create_app_registration" {
  description = "Create an app registration + service principal with a client secret for the dispatcher. False: only grant the role to principal_object_ids (e.g. a managed identity)."
  type        = bool
  default     = true
}

variable "client_secret_rotation_days" {
  description = "The client secret is replaced on the first apply after this many days."
  type        = number
  default     = 180

  validation {
    condition     = var.client_secret_rotation_days >= 1 && var.client_secret_rotation_days <= 700
    error_message = "client_secret_rotation_days must be between 1 and 700."
  }
}

variable "client_secret_grace_days" {
  description = "Days a client secret stays valid after its rotation date, so the dispatcher can be given the new one."
  type        = number
  default     = 30
}

variable "principal_object_ids" {
  description = "Other principals (object ids), e.g. the dispatcher's user-assigned managed identity, that get the same role on the resource group."
  type        = list(string)
  default     = []
}

# -- resources outside the resource group that container groups may use ------------------------

variable "user_assigned_identity_ids" {
  description = "User-assigned managed identities the dispatcher may attach to container groups (job variable identities, ACRManagedIdentity image pulls): grants .../userAssignedIdentities/assign/action on each."
  type        = list(string)
  default     = []
}

variable "subnet_ids" {
  description = "Subnets the dispatcher may put container groups in (job variable subnet_ids): grants .../subnets/join/action on each."
  type        = list(string)
  default     = []
}
