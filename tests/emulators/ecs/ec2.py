"""The emulated account's EC2 networking: VPCs, subnets, security groups.

What Prefect's ECS worker reads before RunTask (``DescribeVpcs`` for the
default VPC, then ``DescribeSubnets`` of that VPC) and what a work pool's
network configuration refers to. The account starts like a fresh one: a
default VPC ``vpc-0default`` (10.0.0.0/16) with a default subnet in each of
three AZs of the region and the VPC's ``default`` security group. Tests add
more through ``emu.ec2.add_vpc(...)`` / ``add_subnet(...)`` /
``add_security_group(...)``.

Describe semantics are EC2's: ids that do not exist fail the whole call
(``InvalidVpcID.NotFound`` & co), filters AND together while a filter's
values OR, ``*``/``?`` wildcards match, an unknown filter name is
``InvalidParameterValue``, and ``DryRun`` answers ``DryRunOperation``.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from .errors import AwsError

DEFAULT_VPC_ID = "vpc-0default"
DEFAULT_VPC_CIDR = "10.0.0.0/16"


def _new_id(prefix: str) -> str:
    return f"{prefix}-0{uuid.uuid4().hex[:16]}"  # 17 hex digits, like current EC2 ids


def _tags_api(tags: dict[str, str]) -> dict[str, Any]:
    return {"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]} if tags else {}


def _az_id(az: str) -> str:
    """``us-east-1a`` → ``use1-az1`` (EC2's zone ids are per account; this is a stable stand-in)."""
    parts, letter = az[:-1].split("-"), az[-1]
    country = parts[0] + "".join(p[0] for p in parts[1:-2])  # us-gov-west-1 → usg…
    short = "".join(w[0] for w in re.findall("north|south|east|west|.+?(?=north|south|east|west|$)", parts[-2]))
    return f"{country}{short}{parts[-1]}-az{ord(letter) - ord('a') + 1}"


@dataclass
class Vpc:
    id: str
    cidr: str
    is_default: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    state: str = "available"

    def to_api(self, owner: str) -> dict[str, Any]:
        return {
            "VpcId": self.id, "CidrBlock": self.cidr, "State": self.state, "OwnerId": owner,
            "DhcpOptionsId": "dopt-0default", "InstanceTenancy": "default", "IsDefault": self.is_default,
            "CidrBlockAssociationSet": [{"AssociationId": f"vpc-cidr-assoc-{self.id[4:]}", "CidrBlock": self.cidr,
                                         "CidrBlockState": {"State": "associated"}}],
            "BlockPublicAccessStates": {"InternetGatewayBlockMode": "off"},
            **_tags_api(self.tags),
        }


@dataclass
class Subnet:
    id: str
    vpc_id: str
    cidr: str
    az: str
    default_for_az: bool = False
    map_public_ip_on_launch: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    state: str = "available"

    def to_api(self, region: str, owner: str) -> dict[str, Any]:
        size = ipaddress.ip_network(self.cidr).num_addresses
        return {
            "SubnetId": self.id, "SubnetArn": f"arn:aws:ec2:{region}:{owner}:subnet/{self.id}",
            "VpcId": self.vpc_id, "CidrBlock": self.cidr, "State": self.state, "OwnerId": owner,
            "AvailabilityZone": self.az, "AvailabilityZoneId": _az_id(self.az),
            "AvailableIpAddressCount": max(size - 5, 0),  # AWS reserves 5 addresses per subnet
            "DefaultForAz": self.default_for_az, "MapPublicIpOnLaunch": self.map_public_ip_on_launch,
            "MapCustomerOwnedIpOnLaunch": False, "AssignIpv6AddressOnCreation": False,
            "Ipv6CidrBlockAssociationSet": [], "EnableDns64": False, "Ipv6Native": False,
            "PrivateDnsNameOptionsOnLaunch": {"HostnameType": "ip-name", "EnableResourceNameDnsARecord": False,
                                              "EnableResourceNameDnsAAAARecord": False},
            "BlockPublicAccessStates": {"InternetGatewayBlockMode": "off"},
            **_tags_api(self.tags),
        }


@dataclass
class SecurityGroup:
    id: str
    vpc_id: str
    name: str
    description: str
    tags: dict[str, str] = field(default_factory=dict)

    def to_api(self, region: str, owner: str) -> dict[str, Any]:
        def rule(**extra: Any) -> dict[str, Any]:
            return {"IpProtocol": "-1", "UserIdGroupPairs": [], "IpRanges": [], "Ipv6Ranges": [],
                    "PrefixListIds": [], **extra}

        ingress = [rule(UserIdGroupPairs=[{"UserId": owner, "GroupId": self.id}])] if self.name == "default" else []
        return {
            "GroupId": self.id, "GroupName": self.name, "Description": self.description, "VpcId": self.vpc_id,
            "OwnerId": owner, "SecurityGroupArn": f"arn:aws:ec2:{region}:{owner}:security-group/{self.id}",
            "IpPermissions": ingress, "IpPermissionsEgress": [rule(IpRanges=[{"CidrIp": "0.0.0.0/0"}])],
            **_tags_api(self.tags),
        }


def _bool(value: bool) -> str:
    return "true" if value else "false"


# filter name → the values of a resource it compares against (EC2 accepts the camelCase aliases too)
_Values = Callable[[Any], list[str]]
VPC_FILTERS: dict[str, _Values] = {
    "vpc-id": lambda v: [v.id], "is-default": lambda v: [_bool(v.is_default)],
    "isDefault": lambda v: [_bool(v.is_default)], "cidr": lambda v: [v.cidr], "cidrBlock": lambda v: [v.cidr],
    "cidr-block-association.cidr-block": lambda v: [v.cidr], "state": lambda v: [v.state],
    "dhcp-options-id": lambda v: ["dopt-0default"],
}
SUBNET_FILTERS: dict[str, _Values] = {
    "subnet-id": lambda s: [s.id], "subnetId": lambda s: [s.id], "vpc-id": lambda s: [s.vpc_id],
    "vpcId": lambda s: [s.vpc_id], "default-for-az": lambda s: [_bool(s.default_for_az)],
    "defaultForAz": lambda s: [_bool(s.default_for_az)], "availability-zone": lambda s: [s.az],
    "availabilityZone": lambda s: [s.az], "availability-zone-id": lambda s: [_az_id(s.az)],
    "cidr-block": lambda s: [s.cidr], "cidr": lambda s: [s.cidr], "cidrBlock": lambda s: [s.cidr],
    "state": lambda s: [s.state], "map-public-ip-on-launch": lambda s: [_bool(s.map_public_ip_on_launch)],
}
GROUP_FILTERS: dict[str, _Values] = {
    "group-id": lambda g: [g.id], "group-name": lambda g: [g.name], "vpc-id": lambda g: [g.vpc_id],
    "description": lambda g: [g.description],
}


@cache
def _wildcard(pattern: str) -> re.Pattern:
    return re.compile(re.escape(pattern).replace(r"\*", ".*").replace(r"\?", "."), re.DOTALL)


def _filter_values(name: str, table: dict[str, _Values], owner: str) -> _Values:
    if name in table:
        return table[name]
    if name == "owner-id":
        return lambda _: [owner]
    if name == "tag-key":
        return lambda r: list(r.tags)
    if name.startswith("tag:"):
        return lambda r: [r.tags[name[4:]]] if name[4:] in r.tags else []
    raise AwsError("InvalidParameterValue", f"The filter '{name}' is invalid")


class Ec2:
    """EC2 state of the emulated account; ``EC2_HANDLERS`` serve it through the query protocol."""

    def __init__(self, region: str, account: str):
        self.region, self.account = region, account
        self.lock = threading.RLock()
        self.vpcs: dict[str, Vpc] = {}
        self.subnets: dict[str, Subnet] = {}
        self.security_groups: dict[str, SecurityGroup] = {}
        self.add_vpc(DEFAULT_VPC_CIDR, vpc_id=DEFAULT_VPC_ID, is_default=True, default_group_id="sg-0default")
        for i, letter in enumerate("abc"):
            self.add_subnet(DEFAULT_VPC_ID, f"10.0.{16 * i}.0/20", az=f"{region}{letter}",
                            subnet_id=f"subnet-0default{letter}", default_for_az=True)

    # -- the test API --------------------------------------------------------------------

    def add_vpc(self, cidr: str = "10.1.0.0/16", *, vpc_id: str | None = None, is_default: bool = False,
                tags: dict[str, str] | None = None, default_group_id: str | None = None) -> Vpc:
        """A VPC, with its ``default`` security group as EC2 creates it."""
        ipaddress.ip_network(cidr)  # ValueError on nonsense
        with self.lock:
            if is_default and any(v.is_default for v in self.vpcs.values()):
                raise ValueError("the account already has a default VPC")
            vpc = Vpc(vpc_id or _new_id("vpc"), cidr, is_default, dict(tags or {}))
            if vpc.id in self.vpcs:
                raise ValueError(f"{vpc.id} exists")
            self.vpcs[vpc.id] = vpc
            self.add_security_group(vpc.id, "default", "default VPC security group", group_id=default_group_id)
            return vpc

    def add_subnet(self, vpc_id: str, cidr: str, *, az: str | None = None, subnet_id: str | None = None,
                   default_for_az: bool = False, map_public_ip_on_launch: bool | None = None,
                   tags: dict[str, str] | None = None) -> Subnet:
        with self.lock:
            vpc = self.vpcs[vpc_id]
            network = ipaddress.ip_network(cidr)
            if not network.subnet_of(ipaddress.ip_network(vpc.cidr)):
                raise ValueError(f"{cidr} is not inside {vpc_id}'s {vpc.cidr}")
            if any(s.vpc_id == vpc_id and network.overlaps(ipaddress.ip_network(s.cidr))
                   for s in self.subnets.values()):
                raise ValueError(f"{cidr} overlaps another subnet of {vpc_id}")
            public = default_for_az if map_public_ip_on_launch is None else map_public_ip_on_launch
            subnet = Subnet(subnet_id or _new_id("subnet"), vpc_id, cidr, az or f"{self.region}a",
                            default_for_az, public, dict(tags or {}))
            self.subnets[subnet.id] = subnet
            return subnet

    def add_security_group(self, vpc_id: str, name: str, description: str = "", *, group_id: str | None = None,
                           tags: dict[str, str] | None = None) -> SecurityGroup:
        with self.lock:
            if vpc_id not in self.vpcs:
                raise KeyError(vpc_id)
            if any(g.vpc_id == vpc_id and g.name == name for g in self.security_groups.values()):
                raise ValueError(f"{vpc_id} already has a security group named {name!r}")
            group = SecurityGroup(group_id or _new_id("sg"), vpc_id, name, description or name, dict(tags or {}))
            self.security_groups[group.id] = group
            return group

    # -- what RunTask checks (realistic mode) ----------------------------------------------

    def check_task_network(self, subnets: list[str], groups: list[str]) -> None:
        """RunTask's awsvpc subnets and security groups must exist: ECS asks EC2 and wraps its error
        into 400 ``InvalidParameterException`` (the wording ECS uses, EC2's code in parentheses)."""
        with self.lock:
            for subnet in subnets:
                if subnet not in self.subnets:
                    raise AwsError("InvalidParameterException",
                                   f"Error retrieving subnet information for [{subnet}]: The subnet ID '{subnet}' "
                                   "does not exist (ErrorCode: InvalidSubnetID.NotFound)")
            for group in groups:
                if group not in self.security_groups:
                    raise AwsError("InvalidParameterException",
                                   f"Error retrieving security group information for [{group}]: The security "
                                   f"group '{group}' does not exist (ErrorCode: InvalidGroup.NotFound)")

    # -- Describe* -----------------------------------------------------------------------

    def describe_vpcs(self, p: dict[str, Any]) -> dict[str, Any]:
        found = self._describe(p, self.vpcs, p.get("VpcIds"), VPC_FILTERS, "InvalidVpcID", "vpc")
        return self._page(p, "Vpcs", [v.to_api(self.account) for v in found])

    def describe_subnets(self, p: dict[str, Any]) -> dict[str, Any]:
        found = self._describe(p, self.subnets, p.get("SubnetIds"), SUBNET_FILTERS, "InvalidSubnetID", "subnet")
        return self._page(p, "Subnets", [s.to_api(self.region, self.account) for s in found])

    def describe_security_groups(self, p: dict[str, Any]) -> dict[str, Any]:
        names = p.get("GroupNames")
        groups = self.security_groups
        if names:  # names are looked up in the default VPC only, as on EC2
            default_vpc = next((v.id for v in self.vpcs.values() if v.is_default), None)
            by_name = {g.name: g for g in groups.values() if g.vpc_id == default_vpc}
            missing = [n for n in names if n not in by_name]
            if missing:
                raise AwsError("InvalidGroup.NotFound",
                               f"The security group '{missing[0]}' does not exist in default VPC '{default_vpc}'")
            groups = {by_name[n].id: by_name[n] for n in names}
        found = self._describe(p, groups, p.get("GroupIds"), GROUP_FILTERS, "InvalidGroup", "security group")
        return self._page(p, "SecurityGroups", [g.to_api(self.region, self.account) for g in found])

    def _describe(self, p: dict[str, Any], items: dict[str, Any], ids: list[str] | None,
                  filters: dict[str, _Values], code: str, noun: str) -> list[Any]:
        if p.get("DryRun"):
            raise AwsError("DryRunOperation", "Request would have succeeded, but DryRun flag is set.", 412)
        chosen = list(items.values())
        if ids:
            prefix = "sg-" if code == "InvalidGroup" else noun + "-"
            for ref in ids:
                if not ref.startswith(prefix):
                    malformed = "InvalidGroupId.Malformed" if code == "InvalidGroup" else f"{code}.Malformed"
                    raise AwsError(malformed, f'Invalid id: "{ref}"')
                if ref not in items:
                    what = f"The {noun} '{ref}'" if code == "InvalidGroup" else f"The {noun} ID '{ref}'"
                    raise AwsError(f"{code}.NotFound", f"{what} does not exist")
            chosen = [items[ref] for ref in dict.fromkeys(ids)]
        for flt in p.get("Filters") or []:
            if not flt.get("Name"):
                raise AwsError("InvalidParameterValue", "The filter 'null' is invalid")
            values_of = _filter_values(flt["Name"], filters, self.account)
            patterns = [_wildcard(v) for v in flt.get("Values") or []]
            chosen = [r for r in chosen if any(pat.fullmatch(v) for pat in patterns for v in values_of(r))]
        return chosen

    @staticmethod
    def _page(p: dict[str, Any], key: str, items: list[dict]) -> dict[str, Any]:
        start = 0
        if p.get("NextToken"):
            try:
                start = int(json.loads(base64.urlsafe_b64decode(p["NextToken"].encode()))["offset"])
            except (ValueError, KeyError, TypeError):
                raise AwsError("InvalidNextToken", "The token provided is invalid.") from None
        size = p.get("MaxResults") or len(items) or 1
        response: dict[str, Any] = {key: items[start:start + size]}
        if start + size < len(items):
            token = json.dumps({"offset": start + size}).encode()
            response["NextToken"] = base64.urlsafe_b64encode(token).decode()
        return response


EC2_HANDLERS: dict[str, Callable[[Ec2, dict[str, Any]], dict[str, Any]]] = {
    "DescribeVpcs": Ec2.describe_vpcs,
    "DescribeSubnets": Ec2.describe_subnets,
    "DescribeSecurityGroups": Ec2.describe_security_groups,
}
