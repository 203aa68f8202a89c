# Credentials for the dispatcher on AWS ECS (Fargate): a role the dispatcher
# assumes, scoped to one cluster; optionally the cluster, the roles its flow-run
# tasks use, their log group, and an IAM user for teams that cannot use roles.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition = data.aws_partition.current.partition
  # .id is the region name under both AWS provider 5.x (where .region does not exist) and 6.x
  # (where .name is deprecated).
  region     = data.aws_region.current.id
  account_id = data.aws_caller_identity.current.account_id
  ecs_arn    = "arn:${local.partition}:ecs:${local.region}:${local.account_id}"

  # "" (never null) when misconfigured, so the precondition on aws_iam_policy.dispatcher reports it.
  cluster_arn  = var.create_cluster ? aws_ecs_cluster.this[0].arn : (var.existing_cluster_arn == null ? "" : var.existing_cluster_arn)
  cluster_name = var.create_cluster ? aws_ecs_cluster.this[0].name : try(split("/", var.existing_cluster_arn)[1], "")

  task_arns            = "${local.ecs_arn}:task/${local.cluster_name}/*"
  task_definition_arns = "${local.ecs_arn}:task-definition/${var.task_definition_family_prefix}*:*"

  execution_role_arn = var.create_execution_role ? aws_iam_role.execution[0].arn : null
  task_role_arn      = var.create_task_role ? aws_iam_role.task[0].arn : null
  # Built from conditionals (not compact()) so its length is known at plan time.
  pass_role_arns = concat(
    var.create_execution_role ? [aws_iam_role.execution[0].arn] : [],
    var.create_task_role ? [aws_iam_role.task[0].arn] : [],
    var.additional_pass_role_arns,
  )

  log_group_name  = coalesce(var.log_group_name, "/ecs/${var.name_prefix}")
  log_group_names = distinct(concat([local.log_group_name], var.additional_log_group_names))

  # "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC" -> the issuer host/path
  oidc_issuer = var.oidc_provider_arn == null ? "" : try(split(":oidc-provider/", var.oidc_provider_arn)[1], "")

  has_trust = length(var.trusted_principal_arns) + length(var.trusted_services) > 0 || var.oidc_provider_arn != null
}

# -- cluster ------------------------------------------------------------------------------

resource "aws_ecs_cluster" "this" {
  #checkov:skip=CKV_AWS_65:Container Insights is billed per metric; var.container_insights turns it on.
  count = var.create_cluster ? 1 : 0

  name = coalesce(var.cluster_name, var.name_prefix)

  setting {
    name  = "containerInsights"
    value = var.container_insights ? "enabled" : "disabled"
  }

  tags = var.tags
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  count = var.create_cluster ? 1 : 0

  cluster_name       = aws_ecs_cluster.this[0].name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]

  default_capacity_provider_strategy {
    capacity_provider = var.default_capacity_provider
    weight            = 1
  }
}

resource "aws_cloudwatch_log_group" "flow_runs" {
  #checkov:skip=CKV_AWS_338:Retention is var.log_retention_days (default 30 days): flow-run logs also reach Prefect; a year is the operator's choice.
  count = var.create_log_group ? 1 : 0

  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = var.tags
}

# -- roles of flow-run tasks ----------------------------------------------------------------

data "aws_iam_policy_document" "execution_trust" {
  statement {
    sid     = "EcsTasks"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "execution" {
  count = var.create_execution_role ? 1 : 0

  name                 = "${var.name_prefix}-execution"
  path                 = var.iam_path
  description          = "ECS task execution role of Prefect flow runs started by the dispatcher (image pulls, logs, secrets)."
  assume_role_policy   = data.aws_iam_policy_document.execution_trust.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  count = var.create_execution_role ? 1 : 0

  role       = aws_iam_role.execution[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution_secrets" {
  count = var.create_execution_role && length(var.execution_role_secret_arns) > 0 ? 1 : 0

  statement {
    sid       = "ReadRunSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = var.execution_role_secret_arns
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  count = var.create_execution_role && length(var.execution_role_secret_arns) > 0 ? 1 : 0

  name   = "read-run-secrets"
  role   = aws_iam_role.execution[0].id
  policy = data.aws_iam_policy_document.execution_secrets[0].json
}

data "aws_iam_policy_document" "task_trust" {
  statement {
    sid     = "EcsTasksOfThisAccount"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["${local.ecs_arn}:*"]
    }
  }
}

resource "aws_iam_role" "task" {
  count = var.create_task_role ? 1 : 0

  name                 = "${var.name_prefix}-task"
  path                 = var.iam_path
  description          = "Task role of Prefect flow-run containers started by the dispatcher."
  assume_role_policy   = data.aws_iam_policy_document.task_trust.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

resource "aws_iam_role_policy_attachment" "task" {
  for_each = var.create_task_role ? toset(var.task_role_policy_arns) : toset([])

  role       = aws_iam_role.task[0].name
  policy_arn = each.value
}

# -- what the dispatcher may do -------------------------------------------------------------

data "aws_iam_policy_document" "dispatcher" {
  statement {
    sid       = "RunTasksOnTheCluster"
    actions   = ["ecs:RunTask"]
    resources = [local.task_definition_arns]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [local.cluster_arn]
    }
  }

  statement {
    sid       = "WatchAndStopTasksOfTheCluster"
    actions   = ["ecs:DescribeTasks", "ecs:StopTask"]
    resources = [local.task_arns]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [local.cluster_arn]
    }
  }

  statement {
    sid       = "ListTasksOfTheCluster"
    actions   = ["ecs:ListTasks"]
    resources = ["*"]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [local.cluster_arn]
    }
  }

  statement {
    # These task definition actions support no resource-level permissions. No Deregister: the
    # provider never deregisters (revisions are adopted by their tags).
    sid = "ManageTaskDefinitions"
    actions = [
      "ecs:RegisterTaskDefinition",
      "ecs:DescribeTaskDefinition",
      "ecs:ListTaskDefinitions",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "TagOnCreateOnly"
    actions   = ["ecs:TagResource"]
    resources = [local.task_arns, local.task_definition_arns]

    condition {
      test     = "StringEquals"
      variable = "ecs:CreateAction"
      values   = ["RunTask", "RegisterTaskDefinition"]
    }
  }

  statement {
    # The default VPC's subnets (default-for-az filter), looked up once when a run names no
    # subnets; no resource-level permissions.
    sid       = "FindDefaultSubnets"
    actions   = ["ec2:DescribeSubnets"]
    resources = ["*"]
  }

  statement {
    sid     = "ReadRunLogs"
    actions = ["logs:GetLogEvents"]
    resources = [
      for name in local.log_group_names : "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${name}:log-stream:*"
    ]
  }

  dynamic "statement" {
    for_each = length(local.pass_role_arns) > 0 ? [local.pass_role_arns] : []

    content {
      sid       = "PassRunRolesToEcsOnly"
      actions   = ["iam:PassRole"]
      resources = statement.value

      condition {
        test     = "StringEquals"
        variable = "iam:PassedToService"
        values   = ["ecs-tasks.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_policy" "dispatcher" {
  name        = "${var.name_prefix}-dispatcher"
  path        = var.iam_path
  description = "Lets the Prefect push dispatcher run, watch and stop flow-run tasks on ECS cluster ${local.cluster_name}."
  policy      = data.aws_iam_policy_document.dispatcher.json
  tags        = var.tags

  lifecycle {
    precondition {
      condition     = var.create_cluster || var.existing_cluster_arn != null
      error_message = "Set existing_cluster_arn when create_cluster is false."
    }
  }
}

data "aws_iam_policy_document" "dispatcher_trust" {
  dynamic "statement" {
    for_each = length(var.trusted_principal_arns) > 0 ? [var.trusted_principal_arns] : []

    content {
      sid     = "TrustedPrincipals"
      actions = ["sts:AssumeRole"]

      principals {
        type        = "AWS"
        identifiers = statement.value
      }

      dynamic "condition" {
        for_each = var.external_id == null ? [] : [var.external_id]

        content {
          test     = "StringEquals"
          variable = "sts:ExternalId"
          values   = [condition.value]
        }
      }
    }
  }

  dynamic "statement" {
    for_each = length(var.trusted_services) > 0 ? [var.trusted_services] : []

    content {
      sid     = "TrustedServicesOfThisAccount"
      actions = ["sts:AssumeRole"]

      principals {
        type        = "Service"
        identifiers = statement.value
      }

      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [local.account_id]
      }
    }
  }

  dynamic "statement" {
    for_each = var.oidc_provider_arn == null ? [] : [var.oidc_provider_arn]

    content {
      sid     = "TrustedWebIdentity"
      actions = ["sts:AssumeRoleWithWebIdentity"]

      principals {
        type        = "Federated"
        identifiers = [statement.value]
      }

      condition {
        test     = "StringEquals"
        variable = "${local.oidc_issuer}:aud"
        values   = [var.oidc_audience]
      }

      condition {
        test     = "StringLike"
        variable = "${local.oidc_issuer}:sub"
        values   = var.oidc_subjects
      }
    }
  }
}

resource "aws_iam_role" "dispatcher" {
  count = var.create_role ? 1 : 0

  name                 = "${var.name_prefix}-dispatcher"
  path                 = var.iam_path
  description          = "Assumed by the Prefect push dispatcher to start flow runs on ECS."
  assume_role_policy   = data.aws_iam_policy_document.dispatcher_trust.json
  max_session_duration = var.max_session_duration
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags

  lifecycle {
    precondition {
      condition     = local.has_trust
      error_message = "The dispatcher role trusts nobody: set trusted_principal_arns, trusted_services or oidc_provider_arn (or create_role = false)."
    }

    precondition {
      condition     = var.oidc_provider_arn == null || length(var.oidc_subjects) > 0
      error_message = "oidc_subjects must name the allowed subjects when oidc_provider_arn is set."
    }
  }
}

resource "aws_iam_role_policy_attachment" "dispatcher" {
  count = var.create_role ? 1 : 0

  role       = aws_iam_role.dispatcher[0].name
  policy_arn = aws_iam_policy.dispatcher.arn
}

# -- optional IAM user (long-lived access key) -------------------------------------------------

resource "aws_iam_user" "dispatcher" {
  count = var.create_iam_user ? 1 : 0

  name                 = "${var.name_prefix}-dispatcher"
  path                 = var.iam_path
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

resource "aws_iam_user_policy_attachment" "dispatcher" {
  count = var.create_iam_user ? 1 : 0

  user       = aws_iam_user.dispatcher[0].name
  policy_arn = aws_iam_policy.dispatcher.arn
}

resource "aws_iam_access_key" "dispatcher" {
  count = var.create_iam_user ? 1 : 0

  user    = aws_iam_user.dispatcher[0].name
  pgp_key = var.iam_user_pgp_key
}
