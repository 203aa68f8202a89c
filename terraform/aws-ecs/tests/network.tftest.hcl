# `terraform test` (Terraform >= 1.7) of the optional run network, with a mocked AWS
# provider: nothing is called, applies are simulated, so the planned wiring (which NAT
# gateway each zone's tasks leave through, which addresses are published) is checked
# with the computed ids filled in.

mock_provider "aws" {
  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }

  mock_data "aws_region" {
    defaults = {
      id   = "eu-west-1"
      name = "eu-west-1"
    }
  }

  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
    }
  }

  mock_data "aws_vpc" {
    defaults = {
      cidr_block = "10.1.0.0/16"
    }
  }

  mock_resource "aws_iam_policy" {
    defaults = {
      arn = "arn:aws:iam::123456789012:policy/prefect-dispatcher-dispatcher"
    }
  }

  mock_resource "aws_iam_role" {
    defaults = {
      arn = "arn:aws:iam::123456789012:role/prefect-dispatcher"
    }
  }

  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
}

variables {
  trusted_services = ["ecs-tasks.amazonaws.com"]
}

run "no_network_by_default" {
  command = plan

  assert {
    condition     = length(aws_vpc.runs) + length(aws_eip.nat) + length(aws_nat_gateway.runs) + length(aws_security_group.runs) == 0
    error_message = "Without create_run_network nothing of the network may be created."
  }

  assert {
    condition     = length(output.egress_ip_addresses) == 0 && output.ecs_network_configuration == null
    error_message = "Without the network there are no egress addresses and no network configuration."
  }
}

run "created_network_egresses_through_one_nat_per_zone" {
  command = apply

  variables {
    create_run_network             = true
    run_network_availability_zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
  }

  assert {
    condition     = length(aws_vpc.runs) == 1 && length(aws_internet_gateway.runs) == 1
    error_message = "A VPC and its internet gateway must be created."
  }

  assert {
    condition     = length(aws_eip.nat) == 3 && length(output.egress_ip_addresses) == 3
    error_message = "One Elastic IP per NAT gateway, each published in egress_ip_addresses."
  }

  assert {
    condition     = output.egress_ip_addresses == aws_eip.nat[*].public_ip && length(distinct(output.egress_ip_addresses)) == 3
    error_message = "egress_ip_addresses must be exactly the NAT gateways' Elastic IPs."
  }

  assert {
    condition = alltrue([
      for i in range(3) :
      aws_nat_gateway.runs[i].allocation_id == aws_eip.nat[i].id && aws_nat_gateway.runs[i].subnet_id == aws_subnet.public[i].id
    ])
    error_message = "Each NAT gateway must use its own Elastic IP and sit in its zone's public subnet."
  }

  assert {
    condition = alltrue([
      for i in range(3) :
      aws_route.private_egress[i].route_table_id == aws_route_table.private[i].id &&
      aws_route.private_egress[i].nat_gateway_id == aws_nat_gateway.runs[i].id &&
      aws_route.private_egress[i].destination_cidr_block == "0.0.0.0/0" &&
      aws_route_table_association.private[i].subnet_id == aws_subnet.private[i].id &&
      aws_route_table_association.private[i].route_table_id == aws_route_table.private[i].id
    ])
    error_message = "Each zone's private subnet must route the internet to that zone's NAT gateway."
  }

  assert {
    condition = (
      aws_route.public_internet[0].gateway_id == aws_internet_gateway.runs[0].id &&
      length(distinct(aws_subnet.private[*].availability_zone)) == 3 &&
      alltrue([for s in concat(aws_subnet.private, aws_subnet.public) : !s.map_public_ip_on_launch])
    )
    error_message = "NAT gateways must reach the internet gateway; subnets spread over 3 zones, no public IPs on launch."
  }

  assert {
    condition     = aws_subnet.private[*].cidr_block == ["10.80.128.0/20", "10.80.144.0/20", "10.80.160.0/20"]
    error_message = "Private subnets must be carved from the upper half of the VPC's range."
  }

  assert {
    condition = (
      length(aws_security_group.runs[0].ingress) == 0 &&
      [for e in aws_security_group.runs[0].egress : [e.protocol, e.from_port, e.to_port]] == [["tcp", 443, 443]]
    )
    error_message = "The tasks' security group must allow no inbound traffic and outbound HTTPS only."
  }

  assert {
    condition = output.ecs_network_configuration == {
      subnets        = aws_subnet.private[*].id
      securityGroups = [aws_security_group.runs[0].id]
      assignPublicIp = "DISABLED"
    } && output.run_subnet_ids == aws_subnet.private[*].id && output.run_security_group_id == aws_security_group.runs[0].id
    error_message = "The outputs must name the private subnets and the security group, without public IPs."
  }
}

run "given_vpc_uses_its_internet_gateway" {
  command = apply

  variables {
    create_run_network               = true
    run_network_vpc_id               = "vpc-0123456789abcdef0"
    run_network_internet_gateway_id  = "igw-0123456789abcdef0"
    run_network_availability_zones   = ["eu-west-1b"]
    run_network_egress_tcp_ports     = [443, 5432]
    run_network_private_subnet_cidrs = ["10.1.200.0/24"]
  }

  assert {
    condition     = length(aws_vpc.runs) == 0 && length(aws_internet_gateway.runs) == 0 && output.run_vpc_id == "vpc-0123456789abcdef0"
    error_message = "A given VPC must be used, not a new one."
  }

  assert {
    condition = (
      aws_route.public_internet[0].gateway_id == "igw-0123456789abcdef0" &&
      aws_subnet.private[0].cidr_block == "10.1.200.0/24" && aws_subnet.public[0].cidr_block == "10.1.0.0/20" &&
      aws_subnet.private[0].availability_zone == "eu-west-1b" && length(output.egress_ip_addresses) == 1
    )
    error_message = "The given gateway, CIDRs and zone must be used; one NAT gateway, one egress address."
  }

  assert {
    condition     = toset([for e in aws_security_group.runs[0].egress : e.to_port]) == toset([443, 5432])
    error_message = "Each listed port gets an egress rule."
  }
}

run "given_vpc_needs_its_internet_gateway" {
  command = plan

  variables {
    create_run_network             = true
    run_network_vpc_id             = "vpc-0123456789abcdef0"
    run_network_availability_zones = ["eu-west-1a"]
  }

  expect_failures = [aws_route.public_internet]
}

run "subnet_lists_must_match_the_zones" {
  command = plan

  variables {
    create_run_network               = true
    run_network_availability_zones   = ["eu-west-1a", "eu-west-1b"]
    run_network_private_subnet_cidrs = ["10.80.200.0/24"]
  }

  expect_failures = [aws_subnet.public]
}

run "the_zones_must_be_listed" {
  command = plan

  variables {
    create_run_network = true
  }

  expect_failures = [aws_security_group.runs]
}
