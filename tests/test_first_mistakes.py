"""The first mistakes a new user made with the constructs, and what they are told now."""

from __future__ import annotations

from typing import Any

import pytest

from rds_force_ssl import ForceSsl, ForceSslError, SslBaseline
from tests.conftest import Sandbox


def test_a_misspelt_force_ssl_keyword_gets_the_path_and_a_suggestion(sandbox: Sandbox) -> None:
    db = sandbox.instance()
    kwargs: dict[str, Any] = {"database": db, "min_tls": "TLSv1.2"}
    with pytest.raises(TypeError) as caught:
        ForceSsl(sandbox.stack, "DbSsl", **kwargs)
    text = str(caught.value)
    assert "Stack/DbSsl: 'min_tls' is not a ForceSsl option; did you mean 'min_tls_version'?" in (
        text
    )
    assert isinstance(caught.value, ForceSslError)  # the construct's own error, as for values
    assert sandbox.stack.node.try_find_child("DbSsl") is None  # nothing half-built


def test_a_misspelt_keyword_given_positionally_scoped_still_names_the_path(
    sandbox: Sandbox,
) -> None:
    kwargs: dict[str, Any] = {
        "scope": sandbox.stack,
        "construct_id": "Guard",
        "database": sandbox.instance(),
        "rebot": "never",
    }
    with pytest.raises(TypeError, match=r"Stack/Guard: 'rebot' .* did you mean 'reboot'\?"):
        ForceSsl(**kwargs)


@pytest.mark.parametrize("scope", [None, "app", 42])
def test_baseline_apply_on_something_that_is_not_a_construct_says_what_to_pass(
    scope: Any,
) -> None:
    with pytest.raises(TypeError, match=r"the scope must be a construct.*SslBaseline.apply\(app\)"):
        SslBaseline.apply(scope)
