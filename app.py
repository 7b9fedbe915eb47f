#!/usr/bin/env python3
"""Composition root of the sample app."""

import aws_cdk as cdk

from stacks.sample_stack import SampleStack

app = cdk.App()
SampleStack(app, "RdsForceSslSample")
app.synth()
