"""CI sets RDS_FORCE_SSL_REQUIRE_POSTGRES=1: then a missing server is a failure, never a skip."""

from __future__ import annotations

import pytest

from tests.cli import conftest


def test_required_postgres_fails_instead_of_skipping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "REQUIRE_POSTGRES", True)
    with pytest.raises(pytest.fail.Exception, match="forbids skipping"):
        conftest._unavailable("PostgreSQL server binaries not found")


def test_otherwise_the_postgres_tests_skip_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "REQUIRE_POSTGRES", False)
    with pytest.raises(pytest.skip.Exception, match="binaries not found"):
        conftest._unavailable("PostgreSQL server binaries not found")
