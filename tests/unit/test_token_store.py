"""The token in an Airflow Variable: read back without a warning, and only when it is a token."""

from __future__ import annotations

import json
import logging

import pendulum
import pytest

from airflow_sfi.token_store import published
from airflow_sfi.version_compat import AIRFLOW_V_3_1_PLUS
from tests.helpers import token_item

KEY = "sfi_ws_token"


def stored(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(f"AIRFLOW_VAR_{KEY.upper()}", value)


def test_a_stored_token_is_read_back_and_masked_without_any_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from airflow.providers.common.compat.sdk import redact

    try:
        from airflow.sdk._shared.secrets_masker import SecretsMasker
    except ImportError:  # Airflow 3.0 and 3.1
        from airflow.sdk.execution_time.secrets_masker import SecretsMasker  # type: ignore[no-redef]
    monkeypatch.setattr(SecretsMasker, "_has_warned_short_secret", False, raising=False)
    expires = pendulum.now("UTC").add(minutes=20).to_iso8601_string()
    stored(monkeypatch, json.dumps(token_item("secret-ws-token-store", expires)))
    with caplog.at_level(logging.DEBUG):
        token = published(KEY)
    assert token is not None and token.token == "secret-ws-token-store"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "secret-ws-token-store" not in str(redact(f"token={token.token} at {token.server}"))


@pytest.mark.parametrize("value", ["not json {", json.dumps({"token": "x"}), json.dumps([1])])
def test_anything_else_is_no_token(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    stored(monkeypatch, value)
    with caplog.at_level(logging.WARNING):
        assert published(KEY) is None
    assert "does not hold a token" in caplog.text and value not in caplog.text


@pytest.mark.skipif(
    not AIRFLOW_V_3_1_PLUS, reason="Airflow 3.0 looks a missing Variable up through a task's supervisor"
)
def test_no_variable_is_no_token() -> None:
    assert published("sfi_no_such_token") is None
