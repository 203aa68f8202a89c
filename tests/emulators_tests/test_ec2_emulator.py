"""The emulator's EC2 query-protocol API (what Prefect's ECS worker reads), driven
through real boto3/aiobotocore clients, or raw SigV4-signed form posts where a
test needs to send what botocore never would."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.emulators.ecs import EcsEmulator, Faults

REGION = "us-east-1"
NO_RETRY = {"retries": {"total_max_attempts": 1, "mode": "standard"}}
DEFAULT_SUBNETS = ["subnet-0defaulta", "subnet-0defaultb", "subnet-0defaultc"]


def client(emu: EcsEmulator, service: str = "ec2", **config):
    return boto3.client(service, endpoint_url=emu.endpoint_url, region_name=REGION,
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(**config) if config else None)


def error(excinfo) -> tuple[str, str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def raw_query(emu: EcsEmulator, fields: dict[str, str], service: str = "ec2") -> tuple[int, str, str]:
    """POST a SigV4-signed form; returns (status, error code or "", error message or body)."""
    body = urlencode({"Version": "2016-11-15", **fields}).encode()
    request = AWSRequest(method="POST", url=emu.endpoint_url + "/", data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials("test", "test"), service, REGION).add_auth(request)
    prepared = request.prepare()
    http = urllib.request.Request(prepared.url, data=body, headers=dict(prepared.headers), method="POST")
    try:
        with urllib.request.urlopen(http) as response:
            return response.status, "", response.read().decode()
    except urllib.error.HTTPError as exc:
        root = ET.fromstring(exc.read())
        assert root.tag == "Response" and root.find("RequestID") is not None
        return exc.code, root.findtext("Errors/Error/Code"), root.findtext("Errors/Error/Message")


@pytest.fixture
def ec2(emu):
    return client(emu, **NO_RETRY)


def ids(items: list[dict], key: str) -> list[str]:
    return [item[key] for item in items]


# -- seeded account and Describe* filters --------------------------------------------------------

def test_default_vpc_as_prefects_ecs_worker_looks_it_up(emu, ec2):
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    assert [(v["VpcId"], v["CidrBlock"], v["IsDefault"], v["State"]) for v in vpcs] == [
        ("vpc-0default", "10.0.0.0/16", True, "available")]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": ["vpc-0default"]}])["Subnets"]
    assert ids(subnets, "SubnetId") == DEFAULT_SUBNETS
    assert [s["AvailabilityZone"] for s in subnets] == ["us-east-1a", "us-east-1b", "us-east-1c"]
    assert all(s["DefaultForAz"] and s["MapPublicIpOnLaunch"] and s["VpcId"] == "vpc-0default" for s in subnets)
    assert subnets[0]["CidrBlock"] == "10.0.0.0/20" and subnets[0]["AvailableIpAddressCount"] == 4091
    assert emu.calls["DescribeVpcs"] == emu.calls["DescribeSubnets"] == 1


def test_vpc_ids_and_filters(emu, ec2):
    extra = emu.ec2.add_vpc("10.1.0.0/16", tags={"team": "data"})
    assert ids(ec2.describe_vpcs()["Vpcs"], "VpcId") == ["vpc-0default", extra.id]
    assert ids(ec2.describe_vpcs(VpcIds=[extra.id])["Vpcs"], "VpcId") == [extra.id]
    assert ids(ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["false"]}])["Vpcs"], "VpcId") == [extra.id]
    assert ids(ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": ["vpc-0def*"]}])["Vpcs"], "VpcId") == [
        "vpc-0default"]
    tagged = ec2.describe_vpcs(Filters=[{"Name": "tag:team", "Values": ["data"]}])["Vpcs"]
    assert tagged[0]["Tags"] == [{"Key": "team", "Value": "data"}]
    with pytest.raises(ClientError) as exc:
        ec2.describe_vpcs(VpcIds=["vpc-0missing"])
    assert error(exc) == ("InvalidVpcID.NotFound", "The vpc ID 'vpc-0missing' does not exist", 400)


def test_subnet_filters_and_together_values_or(emu, ec2):
    vpc = emu.ec2.add_vpc("10.2.0.0/16")
    mine = emu.ec2.add_subnet(vpc.id, "10.2.1.0/24", az="us-east-1b")
    both = [{"Name": "vpc-id", "Values": ["vpc-0default", vpc.id]},
            {"Name": "availability-zone", "Values": ["us-east-1b"]}]
    assert ids(ec2.describe_subnets(Filters=both)["Subnets"], "SubnetId") == ["subnet-0defaultb", mine.id]
    assert ids(ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["false"]}])["Subnets"],
               "SubnetId") == [mine.id]
    assert ids(ec2.describe_subnets(SubnetIds=[mine.id, "subnet-0defaulta"])["Subnets"], "SubnetId") == [
        mine.id, "subnet-0defaulta"]
    assert ids(ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": [mine.id]}])["Subnets"],
               "SubnetId") == [mine.id]
    with pytest.raises(ClientError) as exc:
        ec2.describe_subnets(SubnetIds=["subnet-0nope"])
    assert error(exc)[0] == "InvalidSubnetID.NotFound"
    with pytest.raises(ValueError):
        emu.ec2.add_subnet(vpc.id, "10.3.0.0/24")  # outside the VPC


def test_security_groups(emu, ec2):
    vpc = emu.ec2.add_vpc("10.4.0.0/16")
    flows = emu.ec2.add_security_group(vpc.id, "flows", "flow runs")
    defaults = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
    assert sorted(g["VpcId"] for g in defaults) == sorted(["vpc-0default", vpc.id])  # every VPC has one
    found = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc.id]},
                                                  {"Name": "group-name", "Values": ["flows"]}])["SecurityGroups"]
    assert [(g["GroupId"], g["Description"]) for g in found] == [(flows.id, "flow runs")]
    assert ids(ec2.describe_security_groups(GroupIds=["sg-0default"])["SecurityGroups"], "GroupName") == ["default"]
    with pytest.raises(ClientError) as exc:
        ec2.describe_security_groups(GroupIds=["sg-0missing"])
    assert error(exc)[0] == "InvalidGroup.NotFound"


def test_pagination_and_dry_run(emu, ec2):
    vpc = emu.ec2.add_vpc("10.5.0.0/16")
    for i in range(4):
        emu.ec2.add_subnet(vpc.id, f"10.5.{i}.0/24")
    first = ec2.describe_subnets(MaxResults=5)
    second = ec2.describe_subnets(MaxResults=5, NextToken=first["NextToken"])
    assert len(first["Subnets"]) == 5 and len(second["Subnets"]) == 2 and "NextToken" not in second
    paged = [s["SubnetId"] for page in ec2.get_paginator("describe_subnets").paginate(PaginationConfig={"PageSize": 5})
             for s in page["Subnets"]]
    assert paged == list(emu.ec2.subnets)
    with pytest.raises(ClientError) as exc:
        ec2.describe_vpcs(DryRun=True)
    assert error(exc)[0] == "DryRunOperation" and error(exc)[2] == 412


# -- validation against the ec2 service model ---------------------------------------------------

def test_parameters_are_checked_against_the_model(emu):
    ok = raw_query(emu, {"Action": "DescribeVpcs", "Filter.1.Name": "isDefault", "Filter.1.Value.1": "true"})
    assert ok[0] == 200 and "<vpcId>vpc-0default</vpcId>" in ok[2]
    assert raw_query(emu, {"Action": "DescribeVpcs", "Bogus": "1"}) == (
        400, "UnknownParameter", "The parameter Bogus is not recognized")
    assert raw_query(emu, {"Action": "DescribeVpcs", "Filter.1.Colour": "red"})[1:] == (
        "UnknownParameter", "The parameter Filter.1.Colour is not recognized")
    assert raw_query(emu, {"Action": "DescribeVpcs", "Filter.x.Name": "vpc-id"})[1] == "InvalidParameterValue"
    status, code, message = raw_query(emu, {"Action": "DescribeVpcs", "MaxResults": "abc"})
    assert (status, code) == (400, "InvalidParameterValue") and "MaxResults" in message
    status, code, message = raw_query(emu, {"Action": "DescribeSubnets", "MaxResults": "1"})  # model: min 5
    assert (code, "greater than or equal to 5" in message) == ("InvalidParameterValue", True)
    assert raw_query(emu, {"Action": "DescribeVpcs", "DryRun": "maybe"})[1] == "InvalidParameterValue"
    assert raw_query(emu, {"Action": "CreateSecurityGroup", "GroupName": "x"})[1:] == (
        "MissingParameter", "The request must contain the parameter Description")
    assert raw_query(emu, {"Action": "TerminateEverything"})[1] == "InvalidAction"
    assert raw_query(emu, {"Action": "DescribeVpcs", "Version": "2010-01-01"})[1] == "NoSuchVersion"
    assert raw_query(emu, {"Action": "DescribeVpcs"}, service="ecs")[:2] == (401, "AuthFailure")


def test_unknown_filter_names_are_rejected(ec2):
    with pytest.raises(ClientError) as exc:
        ec2.describe_subnets(Filters=[{"Name": "colour", "Values": ["red"]}])
    assert error(exc) == ("InvalidParameterValue", "The filter 'colour' is invalid", 400)


def test_botocore_lax_client_reaches_server_validation(emu):
    lax = client(emu, parameter_validation=False, **NO_RETRY)
    with pytest.raises(ClientError) as exc:
        lax.describe_vpcs(MaxResults="lots")
    assert error(exc)[0] == "InvalidParameterValue"


# -- faults -----------------------------------------------------------------------------------------

def test_throttling_is_request_limit_exceeded(emu, ec2):
    emu.faults = Faults(throttle_rate=1.0, ops={"DescribeSubnets"})
    with pytest.raises(ClientError) as exc:
        ec2.describe_subnets()
    assert error(exc) == ("RequestLimitExceeded", "Request limit exceeded.", 503)
    assert ec2.describe_vpcs()["Vpcs"]  # other operations are untouched
    retrying = client(emu, retries={"total_max_attempts": 3, "mode": "standard"})
    emu.reset_calls()
    with pytest.raises(ClientError) as exc:
        retrying.describe_subnets()
    assert emu.calls["DescribeSubnets"] == 3 and exc.value.response["ResponseMetadata"]["RetryAttempts"] == 2


def test_server_errors_latency_and_lost_responses(emu, ec2):
    emu.faults = Faults(server_error_rate=1.0)
    with pytest.raises(ClientError) as exc:
        ec2.describe_vpcs()
    assert error(exc)[::2] == ("InternalError", 500)
    emu.faults = Faults(lost_responses=1)
    with pytest.raises(ClientError) as exc:
        ec2.describe_vpcs()
    assert error(exc)[0] == "InternalError" and emu.faults.lost_responses == 0
    emu.faults = Faults(latency_s=0.1)
    started = time.monotonic()
    ec2.describe_vpcs()
    assert time.monotonic() - started >= 0.1


# -- one endpoint, other clients ---------------------------------------------------------------------

def test_ecs_and_ec2_share_the_endpoint_and_call_counter(emu, ec2):
    ecs = client(emu, "ecs")
    assert ecs.list_clusters()["clusterArns"] and ec2.describe_vpcs()["Vpcs"]
    assert (emu.calls["ListClusters"], emu.calls["DescribeVpcs"]) == (1, 1)


async def test_aiobotocore_parses_ec2_responses_and_errors(emu):
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    async with get_session().create_client(
        "ec2", endpoint_url=emu.endpoint_url, region_name=REGION, config=AioConfig(**NO_RETRY),
        aws_access_key_id="test", aws_secret_access_key="test",
    ) as ec2:
        vpcs = (await ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}]))["Vpcs"]
        subnets = (await ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]}]))["Subnets"]
        assert ids(subnets, "SubnetId") == DEFAULT_SUBNETS
        with pytest.raises(ClientError) as exc:
            await ec2.describe_vpcs(VpcIds=["vpc-0missing"])
        assert error(exc)[0] == "InvalidVpcID.NotFound"
