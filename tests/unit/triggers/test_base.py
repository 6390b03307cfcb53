"""SfiFeedTrigger: the selection of a live-event trigger, checked at DAG parse, and kwargs that rebuild it."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from airflow_sfi.exceptions import SfiConfigError, SfiSubscriptionError
from airflow_sfi.triggers.match_event import SfiMatchEventTrigger, SfiMatchEventWaitTrigger
from tests.helpers import rebuilt

MATCH = "0123456789abcdef"
LEAGUE = "fedcba9876543210"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"channel": "RADIO"}, SfiSubscriptionError, "unknown channel 'RADIO'"),
        ({"scope": "league"}, SfiSubscriptionError, "needs an id"),
        ({"event_types": ["goal", "own_goal"]}, SfiConfigError, "unknown event type.*own_goal"),
    ],
)
def test_a_bad_selection_fails_when_the_dag_is_parsed(kwargs: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        SfiMatchEventTrigger(**kwargs)


def test_kwargs_hold_the_selection_and_no_secret() -> None:
    trigger = SfiMatchEventTrigger(channel="MAIN", scope="league", scope_id=LEAGUE, event_types=["goal"])
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_sfi.triggers.match_event.SfiMatchEventTrigger"
    assert kwargs == {
        "sfi_conn_id": "sfi_default",
        "channel": "MAIN",
        "scope": "league",
        "scope_id": LEAGUE,
        "event_types": ["goal"],
        "ping_interval": 30.0,
        "renew_margin": datetime.timedelta(minutes=5),
    }
    assert rebuilt(trigger).serialize() == (classpath, kwargs)
    wait = SfiMatchEventWaitTrigger(scope="match", scope_id=MATCH, event_types=["match_end"])
    assert wait.serialize()[0] == "airflow_sfi.triggers.match_event.SfiMatchEventWaitTrigger"
