"""CI sets RDS_FORCE_SSL_REQUIRE_MARIADB=1 (and CI=true): then a missing MariaDB server is a
failure, never a skip."""

from __future__ import annotations

import pytest

from tests.cli import conftest


def test_required_mariadb_fails_instead_of_skipping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "REQUIRE_MARIADB", True)
    with pytest.raises(pytest.fail.Exception, match="forbids skipping"):
        conftest._mariadb_unavailable("MariaDB server binaries not found")


def test_otherwise_the_mariadb_tests_skip_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "REQUIRE_MARIADB", False)
    with pytest.raises(pytest.skip.Exception, match="binaries not found"):
        conftest._mariadb_unavailable("MariaDB server binaries not found")
