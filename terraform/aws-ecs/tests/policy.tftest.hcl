# `terraform test` (Terraform >= 1.7): plans only, with dummy credentials and the one
# data source that would call AWS (STS) overridden, so it runs offline once the
# provider is installed. The IAM policy documents are computed for real.

provider "aws" {
  region                      = "eu-west-1"
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
}

override_data {
  target = data.aws_caller_identity.current
  values = {
    account_id = "123456789012"
  }
}

variables {
  trusted_principal_arns = ["arn:aws:iam::123456789012:role/dispatcher-task"]
  create_cluster         = false
  existing_cluster_arn   = "arn:aws:ecs:eu-west-1:123456789012:cluster/flows"
  # Known role ARNs, so the policy document is known at plan time.
  create_execution_role     = false
  create_task_role          = false
  additional_pass_role_arns = ["arn:aws:iam::123456789012:role/flow-execution"]
}

run "policy_is_scoped_to_the_cluster_and_roles" {
  command = plan

  assert {
    condition = alltrue([
      for s in jsondecode(data.aws_iam_policy_document.dispatcher.json).Statement :
      s.Condition.ArnEquals["ecs:cluster"] == "arn:aws:ecs:eu-west-1:123456789012:cluster/flows"
      if contains(["RunTasksOnTheCluster", "WatchAndStopTasksOfTheCluster", "ListTasksOfTheCluster"], s.Sid)
    ])
    error_message = "RunTask, DescribeTasks, StopTask and ListTasks must be limited to the cluster."
  }

  assert {
    condition = one([
      for s in jsondecode(data.aws_iam_policy_document.dispatcher.json).Statement :
      s.Resource if s.Sid == "PassRunRolesToEcsOnly"
    ]) == "arn:aws:iam::123456789012:role/flow-execution"
    error_message = "iam:PassRole must be limited to the listed roles."
  }

  assert {
    condition     = local.task_arns == "arn:aws:ecs:eu-west-1:123456789012:task/flows/*"
    error_message = "Task ARNs must be those of the cluster."
  }
}

run "role_without_trust_is_refused" {
  command = plan

  variables {
    trusted_principal_arns = []
  }

  expect_failures = [aws_iam_role.dispatcher]
}

run "existing_cluster_is_required_without_create_cluster" {
  command = plan

  variables {
    existing_cluster_arn = null
  }

  expect_failures = [aws_iam_policy.dispatcher]
}

run "oidc_trust_needs_subjects" {
  command = plan

  variables {
    trusted_principal_arns = []
    oidc_provider_arn      = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC"
  }

  expect_failures = [aws_iam_role.dispatcher]
}

run "full_setup_plans" {
  command = plan

  variables {
    create_cluster        = true
    existing_cluster_arn  = null
    create_execution_role = true
    create_task_role      = true
    create_iam_user       = true
    trusted_services      = ["ecs-tasks.amazonaws.com"]
  }

  assert {
    condition     = length(aws_iam_access_key.dispatcher) == 1 && length(aws_ecs_cluster_capacity_providers.this) == 1
    error_message = "The IAM user's key and the cluster's capacity providers must be planned."
  }
}
