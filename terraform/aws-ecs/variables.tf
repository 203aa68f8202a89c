variable "name_prefix" {
  description = "Prefix of every name this module creates (roles, policy, cluster, log group, user)."
  type        = string
  default     = "prefect-dispatcher"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9+=,.@_-]{0,37}$", var.name_prefix))
    error_message = "name_prefix must start with a letter, use IAM name characters and be at most 38 characters (room for suffixes)."
  }
}

variable "tags" {
  description = "Tags added to every resource that supports them."
  type        = map(string)
  default     = {}
}

# -- who may act as the dispatcher ------------------------------------------------------

variable "create_role" {
  description = "Create the dispatcher IAM role (recommended). At least one trusted_* / oidc_* input must then be set."
  type        = bool
  default     = true
}

variable "trusted_principal_arns" {
  description = "IAM principals (roles, users, account roots) allowed to assume the dispatcher role, e.g. the dispatcher's own ECS task role or an EKS node role."
  type        = list(string)
  default     = []
}

variable "external_id" {
  description = "If set, trusted_principal_arns must pass this sts:ExternalId when assuming the role (for a third-party account)."
  type        = string
  default     = null
}

variable "trusted_services" {
  description = "AWS services allowed to assume the role directly, e.g. [\"ecs-tasks.amazonaws.com\"] to use the role itself as the dispatcher's ECS task role. Limited to this account (aws:SourceAccount)."
  type        = list(string)
  default     = []
}

variable "oidc_provider_arn" {
  description = "ARN of an IAM OIDC provider (EKS IRSA, GitHub Actions, ...) whose tokens may assume the role (sts:AssumeRoleWithWebIdentity)."
  type        = string
  default     = null
}

variable "oidc_subjects" {
  description = "Allowed values (StringLike) of the token's sub claim, e.g. [\"system:serviceaccount:prefect:dispatcher\"]. Required with oidc_provider_arn."
  type        = list(string)
  default     = []
}

variable "oidc_audience" {
  description = "Required aud claim of the OIDC token."
  type        = string
  default     = "sts.amazonaws.com"
}

variable "max_session_duration" {
  description = "Maximum session length of the dispatcher role, in seconds (3600-43200)."
  type        = number
  default     = 3600

  validation {
    condition     = var.max_session_duration >= 3600 && var.max_session_duration <= 43200
    error_message = "max_session_duration must be between 3600 and 43200 seconds."
  }
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary set on every role and user this module creates."
  type        = string
  default     = null
}

variable "iam_path" {
  description = "IAM path of the roles, policy and user."
  type        = string
  default     = "/"
}

variable "create_iam_user" {
  description = "Also create an IAM user with the same policy and an access key, for teams that cannot use roles. The secret is stored in the Terraform state."
  type        = bool
  default     = false
}

variable "iam_user_pgp_key" {
  description = "PGP key (base64 or keybase:user) to encrypt the user's secret access key with; the output is then encrypted_secret_access_key."
  type        = string
  default     = null
}

# -- cluster ----------------------------------------------------------------------------

variable "create_cluster" {
  description = "Create an ECS cluster with the FARGATE and FARGATE_SPOT capacity providers. If false, set existing_cluster_arn."
  type        = bool
  default     = true
}

variable "cluster_name" {
  description = "Name of the created cluster (default: name_prefix)."
  type        = string
  default     = null
}

variable "existing_cluster_arn" {
  description = "ARN of an existing cluster to run flow runs on, when create_cluster is false."
  type        = string
  default     = null

  validation {
    condition     = var.existing_cluster_arn == null || can(regex("^arn:[^:]+:ecs:[^:]+:[0-9]{12}:cluster/[A-Za-z0-9_-]+$", var.existing_cluster_arn))
    error_message = "existing_cluster_arn must be a cluster ARN: arn:<partition>:ecs:<region>:<account>:cluster/<name>."
  }
}

variable "default_capacity_provider" {
  description = "Default capacity provider of the created cluster (used when a run names neither launch type nor strategy)."
  type        = string
  default     = "FARGATE"

  validation {
    condition     = contains(["FARGATE", "FARGATE_SPOT"], var.default_capacity_provider)
    error_message = "default_capacity_provider must be FARGATE or FARGATE_SPOT."
  }
}

variable "container_insights" {
  description = "Enable CloudWatch Container Insights on the created cluster (billed)."
  type        = bool
  default     = false
}

variable "task_definition_family_prefix" {
  description = "If set, the dispatcher may only run (and tag) task definitions whose family starts with this prefix, e.g. \"prefect\" (Prefect's default families are prefect_<pool>_<deployment>). Empty: any family."
  type        = string
  default     = ""
}

# -- roles passed to flow-run tasks -----------------------------------------------------

variable "create_execution_role" {
  description = "Create a task execution role (AmazonECSTaskExecutionRolePolicy) for flow-run tasks: image pulls, logs, secrets."
  type        = bool
  default     = true
}

variable "execution_role_secret_arns" {
  description = "Secrets Manager secret ARNs the execution role may read, e.g. the Prefect API key secret used as prefect_api_key_secret_arn."
  type        = list(string)
  default     = []
}

variable "create_task_role" {
  description = "Create a task role for flow-run containers (what the flow's own code may do in AWS)."
  type        = bool
  default     = true
}

variable "task_role_policy_arns" {
  description = "Managed policy ARNs attached to the created task role (nothing by default: flows get no AWS permissions)."
  type        = list(string)
  default     = []
}

variable "additional_pass_role_arns" {
  description = "Existing execution/task role ARNs the dispatcher may also pass to ECS (iam:PassRole)."
  type        = list(string)
  default     = []
}

# -- logs -------------------------------------------------------------------------------

variable "create_log_group" {
  description = "Create the CloudWatch log group flow-run containers log to."
  type        = bool
  default     = true
}

variable "log_group_name" {
  description = "Name of the flow-run log group (default: /ecs/<name_prefix>)."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Retention of the created log group, in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653)."
  }
}

variable "log_kms_key_arn" {
  description = "KMS key ARN to encrypt the created log group with (default: CloudWatch-managed encryption)."
  type        = string
  default     = null
}

variable "additional_log_group_names" {
  description = "Other log groups the dispatcher may read run logs from (logs:GetLogEvents)."
  type        = list(string)
  default     = []
}

# -- network with static egress addresses (optional) --------------------------------------

variable "create_run_network" {
  description = "Create a network for flow-run tasks whose outbound traffic leaves through NAT gateways with Elastic IPs (static, allow-listable addresses, output egress_ip_addresses). NAT gateways are billed per hour and per GB."
  type        = bool
  default     = false
}

variable "run_network_vpc_id" {
  description = "Put the run network into this existing VPC (then set run_network_internet_gateway_id); default: create a VPC."
  type        = string
  default     = null
}

variable "run_network_internet_gateway_id" {
  description = "Internet gateway of run_network_vpc_id, the NAT gateways' way out. Ignored when the module creates the VPC."
  type        = string
  default     = null
}

variable "run_network_cidr" {
  description = "CIDR block of the created VPC."
  type        = string
  default     = "10.80.0.0/16"

  validation {
    condition     = can(cidrhost(var.run_network_cidr, 0)) && tonumber(split("/", var.run_network_cidr)[1]) <= 24
    error_message = "run_network_cidr must be an IPv4 CIDR block of /24 or larger."
  }
}

variable "run_network_availability_zones" {
  description = "Availability zones of the run network, e.g. [\"eu-west-1a\", \"eu-west-1b\"]: one private subnet, NAT gateway and Elastic IP (egress address) each. One zone is cheapest; two or more keep egress up when a zone fails. Required with create_run_network; changing it later replaces NAT gateways and changes egress addresses."
  type        = list(string)
  default     = []
}

variable "run_network_public_subnet_cidrs" {
  description = "CIDRs of the public subnets holding the NAT gateways, one per zone; default: /20s carved from the VPC's range (set them when the VPC is given and its range is in use)."
  type        = list(string)
  default     = []
}

variable "run_network_private_subnet_cidrs" {
  description = "CIDRs of the private subnets flow-run tasks run in, one per zone; default: /20s carved from the VPC's range."
  type        = list(string)
  default     = []
}

variable "run_network_egress_tcp_ports" {
  description = "TCP ports flow-run tasks may connect out to (HTTPS reaches the Prefect API, ECR and most APIs). Add e.g. 5432 for a database."
  type        = list(number)
  default     = [443]
}

variable "run_network_egress_cidr_blocks" {
  description = "Destinations flow-run tasks may connect to."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}
