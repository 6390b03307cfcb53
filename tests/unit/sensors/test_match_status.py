"""SfiMatchStatusSensor: deferred by default, poke and reschedule like any sensor, one decision for all."""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowSkipException, TaskDeferred

from airflow_sfi.exceptions import SfiApiError, SfiAuthError, SfiConfigError, error_payload
from airflow_sfi.sandbox import SandboxServer, default_matches
from airflow_sfi.sensors.match_status import SfiMatchStatusSensor
from airflow_sfi.triggers.match_status import RESET_MARGIN_SECONDS, SfiMatchStatusTrigger
from tests.helpers import wait_for

MATCH = default_matches()[0]  # 3-2; ENDED unless a playback plays it


def sensor(**kwargs: Any) -> SfiMatchStatusSensor:
    kwargs.setdefault("match_id", MATCH.match_id)
    return SfiMatchStatusSensor(task_id="wait", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"match_id": ""}, "wait: match_id must be a non-empty string, got ''"),
        ({"match_id": "   "}, "wait: match_id must be a non-empty string"),
        ({"match_id": None}, "wait: match_id must be a non-empty string, got None"),
        ({"match_id": 1234}, "wait: match_id must be a non-empty string, got 1234"),
        ({"status": ""}, "wait: status holds an empty status"),
        ({"status": []}, "wait: status must be a status such as 'ENDED'"),
        ({"status": ["ENDED", None]}, "wait: status must be a status"),
        ({"poll_interval": 0}, "wait: poll_interval must be a positive number of seconds, got 0"),
        ({"poll_interval": -1.5}, "wait: poll_interval must be a positive number"),
        ({"poll_interval": "60"}, "wait: poll_interval must be a positive number"),
        ({"poll_interval": True}, "wait: poll_interval must be a positive number"),
    ],
)
def test_a_bad_literal_fails_at_dag_parse(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(SfiConfigError, match=message):
        sensor(**kwargs)


def test_statuses_are_normalised_and_poke_interval_follows_poll_interval() -> None:
    wait = sensor(status=["ended", "In_Play", "ENDED"], poll_interval=15)
    assert wait.statuses == ["ENDED", "IN PLAY"]
    assert (wait.poll_interval, wait.poke_interval) == (15.0, 15.0)
    assert sensor(poll_interval=15, poke_interval=5).poke_interval == 5
    assert sensor().statuses == ["ENDED"] and sensor().deferrable is True


def test_deferred_it_hands_the_triggerer_the_match_and_its_timeout() -> None:
    wait = sensor(match_id=f" {MATCH.match_id} ", status="ended", poll_interval=20, timeout=7200, sfi_conn_id="sfi_x")
    with pytest.raises(TaskDeferred) as caught:
        wait.execute(context={})  # type: ignore[arg-type]
    deferred = caught.value
    assert isinstance(deferred.trigger, SfiMatchStatusTrigger)
    assert deferred.trigger.serialize()[1] == {
        "sfi_conn_id": "sfi_x",
        "match_id": MATCH.match_id,
        "statuses": ["ENDED"],
        "poll_interval": 20.0,
    }
    assert deferred.method_name == "execute_complete"
    assert deferred.timeout == datetime.timedelta(hours=2)


def test_a_template_is_checked_once_rendered() -> None:
    wait = sensor(match_id="{{ params.match_id }}")  # no error at parse
    wait.match_id = ""  # as rendered from an empty param
    with pytest.raises(SfiConfigError, match="wait: match_id must be a non-empty string"):
        wait.execute(context={})  # type: ignore[arg-type]
    skipping = sensor(match_id="{{ params.match_id }}", never_fail=True)
    skipping.match_id = ""
    with pytest.raises(AirflowSkipException, match="never_fail"):
        skipping.execute(context={})  # type: ignore[arg-type]


def test_execute_complete_returns_the_record_or_raises_the_triggers_error_of_its_class() -> None:
    record = {"id": MATCH.match_id, "status": "ENDED", "teamA": {"score": {"f": 3}}}
    assert sensor().execute_complete({}, {"status": "reached", "match": record}) == record  # type: ignore[arg-type]
    refused = {"status": "error", **error_payload(SfiAuthError("Token does not have permission"))}
    with pytest.raises(SfiAuthError, match="Token does not have permission"):
        sensor().execute_complete({}, refused)  # type: ignore[arg-type]


# Poke and reschedule modes, against the sandbox.


def test_poke_mode_returns_the_record_of_a_match_that_has_ended(sfi_sandbox: SandboxServer) -> None:
    record = sensor(deferrable=False).execute(context={})  # type: ignore[arg-type]
    assert (record["id"], record["status"]) == (MATCH.match_id, "ENDED")
    assert [event["team"] for event in record["events"] if event["type"] == "goal"] == ["A", "B", "A", "A", "B"]
    assert len(sfi_sandbox.calls("matches/view/basic")) == 1


def test_poke_uses_the_triggers_decision(sfi_sandbox: SandboxServer) -> None:
    playback = sfi_sandbox.play([MATCH], minute_seconds=100)
    wait_for(lambda: playback.minute is not None, what="the kickoff")
    wait = sensor(deferrable=False, status=["ended"])
    assert not wait.poke({})  # type: ignore[arg-type]
    assert sensor(deferrable=False, status="in play").poke({}).xcom_value["status"] == "IN PLAY"  # type: ignore[arg-type]
    sfi_sandbox.feed.stop_playing()
    done = wait.poke({})  # type: ignore[arg-type]
    assert done and done.xcom_value["status"] == "ENDED"


@pytest.mark.sfi_sandbox(rate_limit=2)
def test_the_quota_lengthens_the_wait_between_pokes_up_to_the_timeout(sfi_sandbox: SandboxServer) -> None:
    playback = sfi_sandbox.play([MATCH], minute_seconds=100)
    wait_for(lambda: playback.minute is not None, what="the kickoff")
    wait = sensor(deferrable=False, poke_interval=5, timeout=7200)
    started = time.monotonic()

    def since() -> float:
        return time.monotonic() - started

    assert wait._get_next_poke_interval(started, since, 1) == 5  # nothing known yet
    assert not wait.poke({})  # type: ignore[arg-type]
    # Two an hour, one left to others: the next poke waits for the reset.
    assert wait._get_next_poke_interval(started, since, 1) == pytest.approx(3600 + RESET_MARGIN_SECONDS, abs=1)
    wait.timeout = 600
    assert wait._get_next_poke_interval(started, since, 1) == pytest.approx(601, abs=1)  # then the timeout


def test_a_429_in_poke_waits_for_the_reset(sfi_sandbox: SandboxServer) -> None:
    sfi_sandbox.inject("rate_limit")
    wait = sensor(deferrable=False, poke_interval=5, timeout=7200)
    assert not wait.poke({})  # type: ignore[arg-type]
    assert wait._get_next_poke_interval(0.0, lambda: 0.0, 1) == pytest.approx(3600 + RESET_MARGIN_SECONDS, abs=1)
    assert wait.poke({})  # type: ignore[arg-type]


def test_poke_polls_again_after_a_transient_error(sfi_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SFI_DEFAULT", sfi_sandbox.connection(max_attempts=1))
    sfi_sandbox.inject("5xx")
    wait = sensor(deferrable=False)
    assert not wait.poke({})  # type: ignore[arg-type]
    assert wait.poke({})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "match_id", "error"),
    [("sandbox-key-basic", MATCH.match_id, SfiAuthError), ("sandbox-key-pro", "ffffffffffffffff", SfiApiError)],
)
def test_poke_mode_fails_with_an_error_no_poll_can_cure(
    sfi_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, key: str, match_id: str, error: type[Exception]
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SFI_DEFAULT", sfi_sandbox.connection(key))
    with pytest.raises(error):
        sensor(deferrable=False, match_id=match_id).execute(context={})  # type: ignore[arg-type]
    with pytest.raises(AirflowSkipException, match="never_fail"):
        sensor(deferrable=False, match_id=match_id, never_fail=True).execute(context={})  # type: ignore[arg-type]
