# Optional network for flow-run tasks with static outbound addresses (off by default):
# private subnets whose only way out is a NAT gateway per availability zone, each with an
# Elastic IP. Every connection a flow run opens to the internet (the Prefect API, a
# database, a partner's API) then comes from one of `egress_ip_addresses`, which a
# firewall can allow-list, the way Prefect Managed work pools publish their static IPs.

locals {
  network_enabled = var.create_run_network
  create_vpc      = local.network_enabled && var.run_network_vpc_id == null
  # One NAT gateway per listed zone. The zones are listed rather than looked up: a looked-up list
  # shifts when a zone is impaired or added, which would replace the NAT gateways and so change
  # the egress addresses everybody allow-listed.
  nat_count = local.network_enabled ? length(var.run_network_availability_zones) : 0

  vpc_id   = local.network_enabled ? (local.create_vpc ? aws_vpc.runs[0].id : var.run_network_vpc_id) : null
  vpc_cidr = local.create_vpc ? var.run_network_cidr : try(data.aws_vpc.given[0].cidr_block, "")
  igw_id   = local.create_vpc ? try(aws_internet_gateway.runs[0].id, null) : var.run_network_internet_gateway_id

  # Two /20s per zone out of the VPC's range unless given: public (NAT only) from index 0,
  # private (tasks) from index 8, so up to 8 zones never overlap.
  public_cidrs = length(var.run_network_public_subnet_cidrs) > 0 ? var.run_network_public_subnet_cidrs : [
    for i in range(local.nat_count) : cidrsubnet(local.vpc_cidr, 4, i)
  ]
  private_cidrs = length(var.run_network_private_subnet_cidrs) > 0 ? var.run_network_private_subnet_cidrs : [
    for i in range(local.nat_count) : cidrsubnet(local.vpc_cidr, 4, 8 + i)
  ]
  cidrs_match = length(local.public_cidrs) == local.nat_count && length(local.private_cidrs) == local.nat_count
  # Padded to nat_count with valid CIDRs, so a short list is reported by the precondition on
  # aws_subnet.public rather than as an index or CIDR error.
  zone         = var.run_network_availability_zones
  public_cidr  = [for i in range(local.nat_count) : try(local.public_cidrs[i], cidrsubnet(local.vpc_cidr, 4, i))]
  private_cidr = [for i in range(local.nat_count) : try(local.private_cidrs[i], cidrsubnet(local.vpc_cidr, 4, 8 + i))]
}

data "aws_vpc" "given" {
  count = local.network_enabled && !local.create_vpc ? 1 : 0

  id = var.run_network_vpc_id
}

resource "aws_vpc" "runs" {
  #checkov:skip=CKV2_AWS_11:Flow logs of the run network are the operator's choice (billed per GB); enable them on the VPC or account level.
  count = local.create_vpc ? 1 : 0

  cidr_block           = var.run_network_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = merge(var.tags, { Name = "${var.name_prefix}-runs" })
}

# The created VPC's default security group allows nothing (tasks use aws_security_group.runs).
resource "aws_default_security_group" "runs" {
  count = local.create_vpc ? 1 : 0

  vpc_id = aws_vpc.runs[0].id
  tags   = merge(var.tags, { Name = "${var.name_prefix}-runs-default-deny" })
}

resource "aws_internet_gateway" "runs" {
  count = local.create_vpc ? 1 : 0

  vpc_id = aws_vpc.runs[0].id
  tags   = merge(var.tags, { Name = "${var.name_prefix}-runs" })
}

# Public subnets hold only the NAT gateways: tasks never get a public address.
resource "aws_subnet" "public" {
  count = local.nat_count

  vpc_id                  = local.vpc_id
  cidr_block              = local.public_cidr[count.index]
  availability_zone       = local.zone[count.index]
  map_public_ip_on_launch = false
  tags                    = merge(var.tags, { Name = "${var.name_prefix}-nat-${local.zone[count.index]}" })

  lifecycle {
    precondition {
      condition     = local.cidrs_match
      error_message = "run_network_public_subnet_cidrs and run_network_private_subnet_cidrs must have one entry per zone of run_network_availability_zones (or be empty)."
    }
  }
}

resource "aws_subnet" "private" {
  count = local.nat_count

  vpc_id                  = local.vpc_id
  cidr_block              = local.private_cidr[count.index]
  availability_zone       = local.zone[count.index]
  map_public_ip_on_launch = false
  tags                    = merge(var.tags, { Name = "${var.name_prefix}-runs-${local.zone[count.index]}" })
}

resource "aws_eip" "nat" {
  count = local.nat_count

  domain = "vpc"
  tags   = merge(var.tags, { Name = "${var.name_prefix}-egress-${local.zone[count.index]}" })
}

resource "aws_nat_gateway" "runs" {
  count = local.nat_count

  allocation_id = aws_eip.nat[count.index].id
  subnet_id     = aws_subnet.public[count.index].id
  tags          = merge(var.tags, { Name = "${var.name_prefix}-${local.zone[count.index]}" })

  # A NAT gateway needs its VPC's internet gateway to be attached first.
  depends_on = [aws_internet_gateway.runs]
}

resource "aws_route_table" "public" {
  count = local.nat_count > 0 ? 1 : 0

  vpc_id = local.vpc_id
  tags   = merge(var.tags, { Name = "${var.name_prefix}-nat" })
}

resource "aws_route" "public_internet" {
  count = local.nat_count > 0 ? 1 : 0

  route_table_id         = aws_route_table.public[0].id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = local.igw_id

  lifecycle {
    precondition {
      condition     = local.igw_id != null
      error_message = "Set run_network_internet_gateway_id (the VPC's internet gateway) when run_network_vpc_id is given."
    }
  }
}

resource "aws_route_table_association" "public" {
  count = local.nat_count

  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public[0].id
}

# One route table per zone: a zone's tasks leave through that zone's NAT gateway (no
# cross-zone data charges, and one zone's outage leaves the others' egress intact).
resource "aws_route_table" "private" {
  count = local.nat_count

  vpc_id = local.vpc_id
  tags   = merge(var.tags, { Name = "${var.name_prefix}-runs-${local.zone[count.index]}" })
}

resource "aws_route" "private_egress" {
  count = local.nat_count

  route_table_id         = aws_route_table.private[count.index].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.runs[count.index].id
}

resource "aws_route_table_association" "private" {
  count = local.nat_count

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[count.index].id
}

# Tasks accept no inbound connections; outbound only to the listed ports. Security groups
# never filter the VPC's DNS resolver, so name resolution needs no rule.
resource "aws_security_group" "runs" {
  count = local.network_enabled ? 1 : 0

  #checkov:skip=CKV2_AWS_5:Attached by the dispatcher at RunTask (network_configuration.securityGroups), not by Terraform.
  name        = "${var.name_prefix}-runs"
  description = "Prefect flow-run tasks: no inbound, outbound to the allowed ports only."
  vpc_id      = local.vpc_id
  tags        = var.tags

  lifecycle {
    precondition {
      condition     = length(var.run_network_availability_zones) >= 1 && length(var.run_network_availability_zones) <= 8
      error_message = "create_run_network needs run_network_availability_zones: 1 to 8 zones, one NAT gateway and egress address each (e.g. [\"eu-west-1a\", \"eu-west-1b\"])."
    }
  }

  dynamic "egress" {
    for_each = toset(var.run_network_egress_tcp_ports)

    content {
      description = "Outbound TCP ${egress.value} (through the NAT gateways)"
      protocol    = "tcp"
      from_port   = egress.value
      to_port     = egress.value
      cidr_blocks = var.run_network_egress_cidr_blocks
    }
  }
}
