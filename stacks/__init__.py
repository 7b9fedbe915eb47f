"""Sample stacks that use rds-force-ssl the way a user would."""
