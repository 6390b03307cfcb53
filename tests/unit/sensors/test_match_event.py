"""SfiMatchEventSensor: wait in the triggerer for one live event, within its timeout."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_sfi.exceptions import SfiAuthError, SfiConfigError, SfiSubscriptionError, error_payload
from airflow_sfi.protocol.messages import FeedEvent, parse_frame
from airflow_sfi.sandbox import SandboxServer, default_matches
from airflow_sfi.sensors.match_event import SfiMatchEventSensor
from airflow_sfi.triggers.match_event import SfiMatchEventWaitTrigger

MATCH = "0123456789abcdef"
LEAGUE = "fedcba9876543210"


def sensor(**kwargs: Any) -> SfiMatchEventSensor:
    return SfiMatchEventSensor(task_id="wait", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"match_id": "12 345"}, "wait: scope 'match' needs an id of 1 to 64 letters"),
        ({"league_id": "x" * 65}, "wait: scope 'league' needs an id"),
        ({"deferrable": False}, "wait: SfiMatchEventSensor always waits in the triggerer"),
        ({"mode": "reschedule"}, "wait: SfiMatchEventSensor always waits in the triggerer"),
        ({"match_id": MATCH, "league_id": LEAGUE}, "match_id or league_id, not both"),
        ({"event_types": "final_whistle"}, "wait: unknown event type"),
        ({"channel": "TV"}, "wait: unknown channel 'TV'"),
    ],
)
def test_a_bad_literal_fails_at_dag_parse(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(SfiConfigError, match=message):
        sensor(**kwargs)


def test_a_bad_rendered_id_fails_clearly_at_run_time() -> None:
    wait = sensor(match_id="{{ params.match_id }}")  # a template is checked once rendered
    wait.match_id = "not an id"
    with pytest.raises(SfiConfigError, match="wait: scope 'match' needs an id"):
        wait.execute(context={})  # type: ignore[arg-type]


def test_deferred_it_hands_the_triggerer_a_selection_and_its_timeout(sfi_sandbox: SandboxServer) -> None:
    wait = sensor(match_id=MATCH, event_types=["match_end"], timeout=7200)
    with pytest.raises(TaskDeferred) as caught:
        wait.execute(context={})  # type: ignore[arg-type]
    trigger = caught.value.trigger
    assert isinstance(trigger, SfiMatchEventWaitTrigger)
    assert trigger.serialize()[1] == {
        "sfi_conn_id": "sfi_default",
        "channel": "MAIN",
        "scope": "match",
        "scope_id": MATCH,
        "event_types": ["match_end"],
        "ping_interval": 30.0,
        "renew_margin": datetime.timedelta(minutes=5),
        "seen": None,  # REST does not know the match: what it shows at the first connection counts as before
    }
    assert caught.value.timeout == datetime.timedelta(seconds=7200)
    assert caught.value.method_name == "execute_complete"


def test_a_wait_on_one_match_hands_over_what_had_happened_by_its_start(sfi_sandbox: SandboxServer) -> None:
    played = default_matches()[0]
    assert sfi_sandbox.play([played], minute_seconds=0.001).wait(10)
    wait = sensor(match_id=played.match_id, event_types=["goal"])
    with pytest.raises(TaskDeferred) as caught:
        wait.execute(context={})  # type: ignore[arg-type]
    # The keys of the events the socket sent: a goal fetched through REST later is known by the same key.
    sent = [parse_frame(json.dumps(e.message)) for e in sfi_sandbox.emitted() if e.message["channel"] == "MAIN"]
    assert sorted(caught.value.trigger.seen) == sorted(e.key for e in sent if isinstance(e, FeedEvent))
    assert len(caught.value.trigger.seen) == 4 + 5  # the four phases and five goals


def test_resumed_it_returns_the_event_or_fails_with_the_triggers_error_of_its_class() -> None:
    wait = sensor(match_id=MATCH)
    found = {"type": "match_end", "match_id": MATCH, "data": {"minute": 90}}
    assert wait.execute_complete({}, {"status": "event", "event": found}) == found  # type: ignore[arg-type]
    refused = SfiSubscriptionError("the plan does not include channel(s) STATS", error_code="CHANNEL_NOT_ALLOWED")
    with pytest.raises(SfiSubscriptionError, match="the plan does not include channel") as raised:
        wait.execute_complete({}, {"status": "error", **error_payload(refused)})  # type: ignore[arg-type]
    assert raised.value.error_code == "CHANNEL_NOT_ALLOWED"
    with pytest.raises(SfiAuthError, match="refused the credential"):
        wait.execute_complete({}, {"status": "error", **error_payload(SfiAuthError("SFI API refused the credential"))})  # type: ignore[arg-type]
