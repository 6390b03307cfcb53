"""SfiMatchEventSensor: wait for one live event, deferred or in the worker, within its timeout."""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowSensorTimeout, AirflowSkipException, TaskDeferred
from airflow.sdk.bases.operator import TriggerFailureReason

from airflow_sfi.exceptions import SfiConfigError
from airflow_sfi.sandbox import SandboxServer
from airflow_sfi.sensors.match_event import SfiMatchEventSensor
from airflow_sfi.triggers.match_event import SfiMatchEventWaitTrigger
from tests.helpers import when_subscribed

MATCH = "0123456789abcdef"
LEAGUE = "fedcba9876543210"


def sensor(**kwargs: Any) -> SfiMatchEventSensor:
    return SfiMatchEventSensor(task_id="wait", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"match_id": "12345"}, "wait: scope 'match' needs an id of 16 lowercase hex digits"),
        ({"league_id": "XYZ"}, "wait: scope 'league' needs an id"),
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
    wait.match_id = "not-an-id"
    with pytest.raises(SfiConfigError, match="wait: scope 'match' needs an id"):
        wait.execute(context={})  # type: ignore[arg-type]


def test_deferred_it_hands_the_triggerer_a_selection_and_its_timeout() -> None:
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
        "renew_margin_seconds": 300.0,
    }
    assert caught.value.timeout == datetime.timedelta(seconds=7200)
    assert caught.value.method_name == "execute_complete"


def test_resumed_it_returns_the_event_or_fails_with_the_triggers_error() -> None:
    wait = sensor(match_id=MATCH)
    found = {"type": "match_end", "match_id": MATCH, "data": {"minute": 90}}
    assert wait.execute_complete({}, {"status": "event", "event": found}) == found  # type: ignore[arg-type]
    with pytest.raises(SfiConfigError, match="wait: the plan does not include channel"):
        wait.execute_complete({}, {"status": "error", "message": "the plan does not include channel(s) STATS"})  # type: ignore[arg-type]


# A deferred wait's timeout: skipped with soft_fail or never_fail on every release (Airflow 3.0 needs our help).
@pytest.mark.parametrize(
    ("flags", "raised"),
    [
        ({}, AirflowSensorTimeout),
        ({"soft_fail": True}, AirflowSkipException),
        ({"never_fail": True}, AirflowSkipException),
    ],
)
def test_a_deferred_wait_ends_at_its_timeout(flags: dict[str, bool], raised: type[Exception]) -> None:
    wait = sensor(match_id=MATCH, timeout=60, **flags)
    with pytest.raises(raised):
        wait.resume_execution("__fail__", {"error": TriggerFailureReason.TRIGGER_TIMEOUT}, context={})  # type: ignore[arg-type]


def play_when_subscribed(api: SandboxServer, topic: str, *events: str) -> None:
    """Emit ``events`` of the match once someone holds ``topic``."""
    when_subscribed(
        api,
        topic,
        lambda: [api.emit("MAIN", t, match_id=MATCH, league_id=LEAGUE, data={"n": n}) for n, t in enumerate(events)],
    )


def test_in_the_worker_it_returns_the_first_matching_event(sfi_sandbox: SandboxServer) -> None:
    play_when_subscribed(sfi_sandbox, f"MAIN:match:{MATCH}", "goal", "match_end", "match_end")
    wait = sensor(match_id=MATCH, deferrable=False, timeout=10)
    found = wait.execute(context={})  # type: ignore[arg-type]
    assert (found["type"], found["match_id"], found["data"]) == ("match_end", MATCH, {"n": 1})
    # The socket was closed, normally, when the wait ended (the sandbox notes it a moment later).
    deadline = time.monotonic() + 5
    while sfi_sandbox.ws_connections()[0].closed_at is None and time.monotonic() < deadline:
        time.sleep(0.02)
    (socket,) = sfi_sandbox.ws_connections()
    assert socket.close_code == 1000


@pytest.mark.parametrize(("soft_fail", "raised"), [(False, AirflowSensorTimeout), (True, AirflowSkipException)])
def test_in_the_worker_it_ends_at_its_timeout(sfi_sandbox: SandboxServer, soft_fail: bool, raised: type) -> None:
    play_when_subscribed(sfi_sandbox, f"MAIN:league:{LEAGUE}", "goal")
    wait = sensor(league_id=LEAGUE, deferrable=False, timeout=1, soft_fail=soft_fail)
    with pytest.raises(raised, match="No match_end on MAIN:league"):
        wait.execute(context={})  # type: ignore[arg-type]
