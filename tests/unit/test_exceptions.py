"""The typed errors, and how a trigger hands one to its task without losing its class."""

from __future__ import annotations

import json

import pytest

from airflow_sfi import exceptions
from airflow_sfi.exceptions import SfiError, SfiSubscriptionError, error_from_payload, error_payload

ALL = [
    getattr(exceptions, name)
    for name in dir(exceptions)
    if isinstance(getattr(exceptions, name), type) and issubclass(getattr(exceptions, name), SfiError)
]


@pytest.mark.parametrize("kind", ALL, ids=lambda kind: kind.__name__)
def test_every_error_crosses_a_trigger_event_with_its_class_and_message(kind: type[SfiError]) -> None:
    error = (
        SfiSubscriptionError("refused", error_code="SUBSCRIPTION_LIMIT")
        if kind is SfiSubscriptionError
        else kind("what went wrong")
    )
    payload = json.loads(json.dumps(error_payload(error)))  # as a trigger event stores it
    rebuilt = error_from_payload(payload)
    assert type(rebuilt) is kind and str(rebuilt) == str(error)
    assert getattr(rebuilt, "error_code", None) == getattr(error, "error_code", None)


def test_an_unknown_or_missing_error_is_an_sfi_error() -> None:
    assert type(error_from_payload({"error": "KeyError", "message": "m"})) is SfiError
    assert str(error_from_payload(error_payload(None))) == "the live feed stopped"
