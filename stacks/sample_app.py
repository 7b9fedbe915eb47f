"""The sample app's composition, shared by app.py and the tests."""

from __future__ import annotations

import aws_cdk as cdk

from rds_force_ssl import SslBaseline
from stacks.sample_stack import SampleStack

STACK_NAME = "RdsForceSslSample"


def compose(app: cdk.App) -> SslBaseline:
    """Add the sample stack and the policy baseline that makes every database in the app
    SSL-only (PostgreSQL, Aurora PostgreSQL and MySQL here, each with its engine's parameter)
    and keeps it so after deploy (``guard=True``: an SslGuard in the stack watches the account
    and region); return the baseline, whose summary() counts what it saw."""
    SampleStack(app, STACK_NAME)
    return SslBaseline.apply(app, mode="enforce", min_tls_version="TLSv1.2", guard=True)
