"""The guard's handler against moto (in process): RDS, its DynamoDB marks, the SQS recheck queue,
Security Hub, CloudWatch and SNS as botocore serialises them.

moto lacks ResetDB(Cluster)ParameterGroup and ModifyDBProxy, and keeps every group in-sync; the
group reset, a proxy turned off in place and "configured but pending-reboot" without a patch are
in tests/handlers/test_guard_sim.py. Here a proxy is created without TLS, and pending-reboot is
patched into moto's instance view.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.rds.models import DBInstance

from rds_force_ssl.handlers import guard
from tests.cli.moto_fleets import db_group, instance

# moto warns that AccessDenied is not in RDS's own error shapes: IAM sends it.
pytestmark = pytest.mark.filterwarnings("ignore:Exception\\(RDSClientError\\):UserWarning")

REGION = "us-east-1"
ACCOUNT = "123456789012"


@dataclass
class Aws:
    rds: Any
    ddb: Any
    sqs: Any
    queue: str
    hub: Any
    cloudwatch: Any
    sns: Any
    topic: str
    svc: guard.Services


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        rds = boto3.client("rds", region_name=REGION)
        ddb = boto3.client("dynamodb", region_name=REGION)
        ddb.create_table(
            TableName="marks",
            KeySchema=[{"AttributeName": guard.KEY, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": guard.KEY, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        sqs = boto3.client("sqs", region_name=REGION)
        queue = sqs.create_queue(QueueName="guard")["QueueUrl"]
        sns = boto3.client("sns", region_name=REGION)
        topic = sns.create_topic(Name="guard")["TopicArn"]
        hub = boto3.client("securityhub", region_name=REGION)
        cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        svc = guard.Services(
            rds=rds,
            marks=guard.DynamoMarks(ddb, "marks"),
            account=ACCOUNT,
            region=REGION,
            recheck=guard.SqsRecheck(sqs, queue),
            hub=hub,
            metrics=cloudwatch,
            topic=sns,
            topic_arn=topic,
            sleep=lambda _: None,
        )
        db_group(rds, "pg16", "postgres16", "1")
        db_group(rds, "pg16-tuned", "postgres16", "0")
        instance(rds, "orders", "16.9", DBParameterGroupName="pg16")
        yield Aws(rds, ddb, sqs, queue, hub, cloudwatch, sns, topic, svc)


def trail(name: str, **request: str) -> dict[str, Any]:
    detail = {"eventName": name, "requestParameters": request}
    body = {"source": "aws.rds", "detail-type": guard.CLOUDTRAIL_DETAIL_TYPE, "detail": detail}
    return {"Records": [{"messageId": "1", "body": json.dumps(body)}]}


SWEEP = {guard.MESSAGE_KEY: guard.SWEEP}


def hub_status(aws: Aws, name: str, segment: str = "db") -> tuple[str, str]:
    (doc,) = [
        f
        for f in aws.hub.get_findings()["Findings"]
        if f["Id"].endswith(f":{segment}:{name}/ssl-only")
    ]
    return str(doc["Compliance"]["Status"]), str(doc["RecordState"])


def test_parameter_turned_off_then_on(aws: Aws) -> None:
    assert guard.run(SWEEP, aws.svc, now=1000.0).status("instance:orders") == "PASSED"
    aws.rds.modify_db_parameter_group(
        DBParameterGroupName="pg16",
        Parameters=[
            {"ParameterName": "rds.force_ssl", "ParameterValue": "0", "ApplyMethod": "immediate"}
        ],
    )
    out = guard.run(
        trail("ModifyDBParameterGroup", dBParameterGroupName="pg16"), aws.svc, now=1100.0
    )
    assert out.status("instance:orders") == "FAILED"
    assert out.kinds == {guard.NOT_CONFIGURED: 1}
    assert hub_status(aws, "orders") == ("FAILED", "ACTIVE")
    aws.rds.modify_db_parameter_group(
        DBParameterGroupName="pg16",
        Parameters=[
            {"ParameterName": "rds.force_ssl", "ParameterValue": "1", "ApplyMethod": "immediate"}
        ],
    )
    out = guard.run(
        trail("ModifyDBParameterGroup", dBParameterGroupName="pg16"), aws.svc, now=1200.0
    )
    assert out.changed == [("instance:orders", "FAILED", "PASSED")]
    assert hub_status(aws, "orders") == ("PASSED", "ACTIVE")
    assert len(aws.hub.get_findings()["Findings"]) == 1  # one Id, updated


def test_group_swapped(aws: Aws) -> None:
    aws.rds.modify_db_instance(DBInstanceIdentifier="orders", DBParameterGroupName="pg16-tuned")
    out = guard.run(trail("ModifyDBInstance", dBInstanceIdentifier="orders"), aws.svc, now=1000.0)
    assert out.status("instance:orders") == "FAILED"
    aws.rds.modify_db_instance(DBInstanceIdentifier="orders", DBParameterGroupName="pg16")
    out = guard.run(trail("ModifyDBInstance", dBInstanceIdentifier="orders"), aws.svc, now=1100.0)
    assert out.status("instance:orders") == "PASSED"


def test_unprotected_database_created_then_deleted(aws: Aws) -> None:
    instance(aws.rds, "adhoc", "14.12")  # the engine default group: rds.force_ssl 0 before 15
    out = guard.run(trail("CreateDBInstance", dBInstanceIdentifier="adhoc"), aws.svc, now=1000.0)
    assert out.status("instance:adhoc") in ("FAILED", "NOT_AVAILABLE")
    aws.rds.delete_db_instance(DBInstanceIdentifier="adhoc", SkipFinalSnapshot=True)
    out = guard.run(trail("DeleteDBInstance", dBInstanceIdentifier="adhoc"), aws.svc, now=1100.0)
    assert out.status("instance:adhoc") == "GONE"
    assert hub_status(aws, "adhoc") == ("PASSED", "ARCHIVED")


def test_proxy_without_tls_created_then_deleted(aws: Aws) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.8.{n}.0/24")["Subnet"]["SubnetId"]
        for n in (1, 2)
    ]
    aws.rds.create_db_proxy(
        DBProxyName="pool",
        EngineFamily="POSTGRESQL",
        Auth=[{"AuthScheme": "SECRETS", "SecretArn": "arn:aws:secretsmanager:x"}],
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/proxy",
        VpcSubnetIds=subnets,
        RequireTLS=False,
    )
    out = guard.run(trail("CreateDBProxy", dBProxyName="pool"), aws.svc, now=1000.0)
    assert out.status("proxy:pool") == "FAILED"
    assert out.kinds == {guard.PROXY_TLS_OFF: 1}
    aws.rds.delete_db_proxy(DBProxyName="pool")
    out = guard.run(trail("DeleteDBProxy", dBProxyName="pool"), aws.svc, now=1100.0)
    assert out.status("proxy:pool") == "GONE"
    assert hub_status(aws, "pool", "db-proxy") == ("PASSED", "ARCHIVED")


def test_configured_but_pending_reboot(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    pending = {"orders"}

    def statuses(self: DBInstance) -> Any:
        groups = self.db_parameter_groups()
        for group in groups:
            status = "pending-reboot" if self.db_instance_identifier in pending else "in-sync"
            setattr(group, "ParameterApplyStatus", status)  # noqa: B010  # what moto itself sets
        return groups

    monkeypatch.setattr(DBInstance, "db_parameter_group_status_list", property(statuses))
    out = guard.run(trail("ModifyDBInstance", dBInstanceIdentifier="orders"), aws.svc, now=1000.0)
    assert out.status("instance:orders") == "FAILED"
    assert out.kinds == {guard.NOT_IN_EFFECT: 1}
    aws.rds.reboot_db_instance(DBInstanceIdentifier="orders")
    pending.clear()
    out = guard.run(trail("RebootDBInstance", dBInstanceIdentifier="orders"), aws.svc, now=1100.0)
    assert out.status("instance:orders") == "PASSED"


def test_a_second_event_within_the_minute_is_deferred_once_to_sqs(aws: Aws) -> None:
    event = trail("ModifyDBInstance", dBInstanceIdentifier="orders")
    assert guard.run(event, aws.svc, now=1000.0).checked == ["instance:orders"]
    second = guard.run(event, aws.svc, now=1010.0)
    third = guard.run(event, aws.svc, now=1020.0)
    assert (second.checked, second.deferred) == ([], ["instance:orders"])
    assert third.deferred == ["instance:orders"]
    delayed = aws.sqs.get_queue_attributes(
        QueueUrl=aws.queue, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]["ApproximateNumberOfMessagesDelayed"]
    assert delayed == "1"  # one recheck queued, not one per event
    recheck = {guard.MESSAGE_KEY: guard.RECHECK, "targets": [["instance", "orders"]]}
    out = guard.run({"Records": [{"body": json.dumps(recheck)}]}, aws.svc, now=1061.0)
    assert out.checked == ["instance:orders"]


def test_metrics_and_the_sns_message(aws: Aws) -> None:
    aws.rds.modify_db_instance(DBInstanceIdentifier="orders", DBParameterGroupName="pg16-tuned")
    guard.run(trail("ModifyDBInstance", dBInstanceIdentifier="orders"), aws.svc, now=1000.0)
    metrics = aws.cloudwatch.list_metrics(Namespace=guard.NAMESPACE)["Metrics"]
    assert {m["MetricName"] for m in metrics} == {*guard.KINDS, guard.NOT_ENFORCED}


def test_denied_listing_is_a_finding(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.rds.responses import RDSResponse

    from tests.cli.moto_fleets import denied

    monkeypatch.setattr(RDSResponse, "describe_db_instances", denied("DescribeDBInstances"))
    out = guard.run(trail("ModifyDBInstance", dBInstanceIdentifier="orders"), aws.svc, now=1000.0)
    assert out.status("instance:orders") == "NOT_AVAILABLE"
    assert any("grant rds:DescribeDBInstances" in p for p in out.problems)
    assert hub_status(aws, "orders") == ("NOT_AVAILABLE", "ACTIVE")


def test_dynamo_marks_on_moto(aws: Aws) -> None:
    marks = aws.svc.marks
    assert marks.claim("instance:x", 1000.0)
    assert not marks.claim("instance:x", 1030.0)
    assert marks.defer("instance:x", 1030.0) == 1060.0
    assert marks.defer("instance:x", 1040.0) is None  # one recheck queued already
    assert marks.claim("instance:x", 1060.0)
    assert marks.seen("instance:x", 1060.0) == guard.Memory(first=1060.0)
    marks.record("instance:x", reported=None, told="FAILED")  # Security Hub did not take it
    assert marks.known() == {}
    marks.record("instance:x", reported="FAILED", told=None)
    assert marks.known() == {"instance:x": "FAILED"}
    marks.remediation("instance:x", at=1100.0, method="pending-reboot")
    marks.remediation("instance:x", at=1100.0, method="pending-reboot", pending_seen=True)
    assert marks.seen("instance:x", 1200.0) == guard.Memory(
        reported="FAILED",
        told="FAILED",
        first=1060.0,
        remediated_at=1100.0,
        method="pending-reboot",
        pending_seen=True,
    )
    marks.restarted("instance:x", 1050.0)  # a restart before the remediation: no evidence
    assert marks.seen("instance:x", 1200.0).remediated_at == 1100.0
    marks.restarted("instance:x", 1150.0)
    assert marks.seen("instance:x", 1300.0).remediated_at is None
    marks.restarted("instance:y", 1150.0)  # nothing remediated: nothing to forget, no error
    assert marks.condition("securityhub", "off") is None
    assert marks.condition("securityhub", "off") == "off"
    assert marks.condition("securityhub", "") == "off"
    assert marks.known() == {"instance:x": "FAILED"}  # conditions are no database


def test_an_unreadable_table_never_stops_a_check() -> None:
    """Denied or throttled, the marks fail open: the database is checked (the batch is
    de-duplicated already), its status is not kept, and the sweep archives nothing."""

    class Refusing:
        def __getattr__(self, name: str) -> Any:
            def refuse(**_: Any) -> Any:
                raise ClientError(
                    {"Error": {"Code": "AccessDeniedException", "Message": "no"}}, name
                )

            return refuse

        def get_paginator(self, name: str) -> Any:
            return self

        def paginate(self, **_: Any) -> Any:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "Scan")

    marks = guard.DynamoMarks(Refusing(), "marks")
    assert marks.claim("instance:x", 1000.0)
    assert marks.defer("instance:x", 1000.0) is None
    assert marks.seen("instance:x", 1000.0) == guard.Memory(first=1000.0)
    marks.record("instance:x", reported="FAILED", told="FAILED")
    marks.remediation("instance:x", at=1000.0, method="pending-reboot")
    marks.restarted("instance:x", 1000.0)
    assert marks.condition("securityhub", "off") == "off"  # unknown: nothing new announced
    assert marks.known() == {}


def test_the_lambda_entry_point_reads_what_the_construct_sets(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """handler() builds its clients from the environment the construct writes (the names are
    guard's constants, which tests/test_guard.py finds in the template)."""
    monkeypatch.setenv(guard.ENV_TABLE, "marks")
    monkeypatch.setenv(guard.ENV_QUEUE, aws.queue)
    monkeypatch.setenv(guard.ENV_TOPIC, aws.topic)
    monkeypatch.setenv(guard.ENV_REMEDIATE, "false")
    monkeypatch.setenv(guard.ENV_ACCOUNT, ACCOUNT)
    monkeypatch.setenv(guard.ENV_PARTITION, "aws")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setattr(guard, "_SERVICES", None)
    (problem,) = guard.handler({guard.MESSAGE_KEY: guard.SWEEP}, None)["problems"]
    assert problem.startswith(f"no CloudTrail trail with logging on covers {REGION}")
    logging_trail(REGION)
    assert guard.handler({guard.MESSAGE_KEY: guard.SWEEP}, None) == {
        "checked": 1,
        "deferred": 0,
        "problems": [],
    }
    assert hub_status(aws, "orders") == ("PASSED", "ACTIVE")


def logging_trail(region: str, *, multi_region: bool = True, start: bool = True) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="trail-logs")
    trails = boto3.client("cloudtrail", region_name=region)
    trails.create_trail(Name="management", S3BucketName="trail-logs",
                        IsMultiRegionTrail=multi_region)  # fmt: skip
    if start:
        trails.start_logging(Name="management")


@pytest.mark.parametrize(
    ("home", "multi_region", "start", "covered"),
    [
        (REGION, False, True, True),
        ("eu-west-3", True, True, True),
        ("eu-west-3", False, True, False),  # another region's single-region trail
        (REGION, True, False, False),  # a trail that does not log
    ],
)
def test_which_trails_cover_the_region_on_moto(
    aws: Aws, home: str, multi_region: bool, start: bool, covered: bool
) -> None:
    trails = boto3.client("cloudtrail", region_name=REGION)
    assert guard.trail_problem(trails, REGION).startswith("no CloudTrail trail")
    logging_trail(home, multi_region=multi_region, start=start)
    assert (guard.trail_problem(trails, REGION) == "") is covered
