"""The library's memory of an app (rds_force_ssl.state): one object, and reset() forgets it."""

from __future__ import annotations

from rds_force_ssl import ForceSsl, state
from rds_force_ssl.force_ssl import protected_by
from tests.conftest import Sandbox


def test_reset_forgets_every_app_and_a_new_app_starts_clean() -> None:
    first = Sandbox()
    db = first.instance()
    ForceSsl(first.stack, "DbSsl", database=db)
    assert protected_by(db) == "Stack/DbSsl"
    remembered = state.STATE
    assert remembered.protected
    assert remembered.providers
    assert remembered.paths
    state.reset()
    assert state.STATE is remembered  # the same object every module imported
    assert remembered.protected == {}
    assert remembered.providers == {}
    assert remembered.paths == {}
    assert protected_by(db) is None
    second = Sandbox()
    ForceSsl(second.stack, "DbSsl", database=second.instance())
    assert len(state.STATE.providers) == 1  # the second app's stack only
