output "region" {
  description = "AWS region of the cluster (aws-credentials block region_name)."
  value       = local.region
}

output "dispatcher_role_arn" {
  description = "Role the dispatcher assumes (aws-credentials block assume_role_arn, or the dispatcher's own task role when trusted_services has ecs-tasks)."
  value       = try(aws_iam_role.dispatcher[0].arn, null)
}

output "dispatcher_policy_arn" {
  description = "The dispatcher's least-privilege policy, to attach to principals managed elsewhere."
  value       = aws_iam_policy.dispatcher.arn
}

output "cluster_arn" {
  description = "Cluster flow runs start on (ecs:push job variable cluster)."
  value       = local.cluster_arn
}

output "cluster_name" {
  description = "Name of that cluster."
  value       = local.cluster_name
}

output "execution_role_arn" {
  description = "Task execution role (ecs:push job variable execution_role_arn)."
  value       = local.execution_role_arn
}

output "task_role_arn" {
  description = "Task role of flow-run containers (ecs:push job variable task_role_arn)."
  value       = local.task_role_arn
}

output "log_group_name" {
  description = "Log group for flow-run containers (cloudwatch_logs_options awslogs-group)."
  value       = local.log_group_name
}

output "ecs_job_variables" {
  description = "Defaults to put in an ecs:push pool's base job template (or a deployment's job_variables)."
  value = {
    cluster                   = local.cluster_arn
    execution_role_arn        = local.execution_role_arn
    task_role_arn             = local.task_role_arn
    configure_cloudwatch_logs = true
    cloudwatch_logs_options = {
      awslogs-group         = local.log_group_name
      awslogs-region        = local.region
      awslogs-stream-prefix = "prefect"
    }
  }
}

output "iam_user_name" {
  description = "The IAM user, if create_iam_user."
  value       = try(aws_iam_user.dispatcher[0].name, null)
}

output "access_key_id" {
  description = "Access key id of the IAM user (aws-credentials block aws_access_key_id)."
  value       = try(aws_iam_access_key.dispatcher[0].id, null)
  sensitive   = true
}

output "secret_access_key" {
  description = "Secret access key of the IAM user (aws-credentials block aws_secret_access_key); null when iam_user_pgp_key is set."
  value       = try(aws_iam_access_key.dispatcher[0].secret, null)
  sensitive   = true
}

output "encrypted_secret_access_key" {
  description = "The secret access key encrypted with iam_user_pgp_key."
  value       = try(aws_iam_access_key.dispatcher[0].encrypted_secret, null)
}

output "aws_credentials_block" {
  description = "Fields of a Prefect aws-credentials block for the dispatcher: the access key if an IAM user was created, else the role to assume."
  sensitive   = true
  value = {
    region_name           = local.region
    assume_role_arn       = var.create_iam_user ? null : try(aws_iam_role.dispatcher[0].arn, null)
    aws_access_key_id     = try(aws_iam_access_key.dispatcher[0].id, null)
    aws_secret_access_key = try(aws_iam_access_key.dispatcher[0].secret, null)
  }
}

output "egress_ip_addresses" {
  description = "Public addresses every outbound connection of a flow run in the run network comes from (one Elastic IP per NAT gateway): allow-list these. Empty without create_run_network."
  value       = aws_eip.nat[*].public_ip
}

output "run_subnet_ids" {
  description = "Private subnets of the run network (ecs:push job variable network_configuration.subnets, or the dispatcher's providers.ecs.subnets)."
  value       = aws_subnet.private[*].id
}

output "run_security_group_id" {
  description = "Security group of flow-run tasks in the run network (network_configuration.securityGroups)."
  value       = try(aws_security_group.runs[0].id, null)
}

output "run_vpc_id" {
  description = "VPC of the run network (ecs:push job variable vpc_id)."
  value       = local.vpc_id
}

output "ecs_network_configuration" {
  description = "The ecs:push job variable network_configuration for the run network (no public IP: egress through the NAT gateways); null without create_run_network."
  value = local.network_enabled ? {
    subnets        = aws_subnet.private[*].id
    securityGroups = [aws_security_group.runs[0].id]
    assignPublicIp = "DISABLED"
  } : null
}
