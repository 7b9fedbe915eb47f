"""Lambda code for the reboot reconciler: stdlib and boto3 only, never CDK."""
