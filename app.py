#!/usr/bin/env python3
"""Composition root of the sample app."""

import sys

import aws_cdk as cdk

from stacks.sample_app import compose

app = cdk.App()
baseline = compose(app)
app.synth()
print(baseline.summary(), file=sys.stderr)
