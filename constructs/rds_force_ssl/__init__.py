"""rds-force-ssl: make RDS for PostgreSQL SSL-only with AWS CDK, and prove that it is."""

from rds_force_ssl.force_ssl import ForceSsl, protected_by

__all__ = ["ForceSsl", "protected_by"]
