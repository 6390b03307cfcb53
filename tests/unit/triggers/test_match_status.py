"""SfiMatchStatusTrigger against the sandbox, its waits recorded instead of slept: the sandbox's clock jumps."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pendulum
import pytest
from airflow.serialization.serialized_objects import BaseSerialization
from airflow.triggers.base import TriggerEvent

from airflow_sfi.arguments import normalise_status, status_list
from airflow_sfi.exceptions import (
    SfiApiError,
    SfiAuthError,
    SfiConfigError,
    SfiRateLimitError,
    SfiResponseError,
    SfiTransportError,
    error_from_payload,
)
from airflow_sfi.protocol.envelope import RateLimit
from airflow_sfi.sandbox import SandboxServer, default_matches
from airflow_sfi.triggers.match_status import (
    RESET_MARGIN_SECONDS,
    SfiMatchStatusTrigger,
    is_transient,
    next_poll_in,
    quota_reserve,
    rate_limited_wait,
    status_reached,
)
from tests.helpers import SandboxClock, rebuilt, wait_for

MATCH = default_matches()[0]  # 3-2, five goals; ENDED unless a playback plays it
NOW = pendulum.datetime(2025, 3, 1, 19, 0, tz="UTC")


class Waits:
    """
    Stands in for the trigger's sleep: records each wait and jumps the sandbox's clock by it (the rate-limit
    window follows), without sleeping. ``after[n]`` runs after the n-th wait (from 1), e.g. to end a match.
    """

    def __init__(self, api: SandboxServer) -> None:
        self.clock = SandboxClock()
        api.sandbox.clock = self.clock
        self.seconds: list[float] = []
        self.after: dict[int, Callable[[], Any]] = {}

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)
        self.clock.offset += seconds
        action = self.after.get(len(self.seconds))
        if action is not None:
            action()
        await asyncio.sleep(0)


@pytest.fixture
def waits(sfi_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Waits]:
    recorder = Waits(sfi_sandbox)
    monkeypatch.setattr(SfiMatchStatusTrigger, "sleep", staticmethod(recorder))
    yield recorder


def trigger(statuses: list[str] | None = None, match_id: str = MATCH.match_id, **kwargs: Any) -> SfiMatchStatusTrigger:
    return SfiMatchStatusTrigger(match_id=match_id, statuses=statuses or ["ENDED"], poll_interval=30.0, **kwargs)


def events(of: SfiMatchStatusTrigger) -> list[TriggerEvent]:
    """Every event the trigger yields until it ends (bounded: a trigger that never ends fails the test)."""

    async def collect() -> list[TriggerEvent]:
        return [event async for event in of.run()]

    return asyncio.run(asyncio.wait_for(collect(), timeout=10))


def playing(api: SandboxServer) -> None:
    """The match kicked off (a minute lasts 100 s): IN PLAY until the playback stops."""
    playback = api.play([MATCH], minute_seconds=100)
    wait_for(lambda: playback.minute is not None, what="the kickoff")


def goals(record: dict[str, Any]) -> list[str]:
    return [event["team"] for event in record["events"] if event["type"] == "goal"]


def test_a_match_that_has_ended_fires_at_once_with_its_record(sfi_sandbox: SandboxServer, waits: Waits) -> None:
    (event,) = events(trigger(status_list("ended", "t")))
    assert event.payload["status"] == "reached"
    record = event.payload["match"]
    assert (record["id"], record["status"]) == (MATCH.match_id, "ENDED")
    assert (record["teamA"]["score"]["f"], record["teamB"]["score"]["f"]) == (3, 2)
    # The triggerer logs the event's repr: one short line, not the record.
    assert repr(event) == "TriggerEvent<status=reached, match=…>"
    assert goals(record) == ["A", "B", "A", "A", "B"]
    assert json.loads(json.dumps(event.payload)) == event.payload  # JSON-safe, for the event table and XCom
    assert waits.seconds == []
    assert [c.endpoint for c in sfi_sandbox.calls()] == ["matches/view/basic"]


def test_it_keeps_polling_until_the_match_ends(sfi_sandbox: SandboxServer, waits: Waits) -> None:
    playing(sfi_sandbox)
    waits.after[2] = sfi_sandbox.feed.stop_playing  # full time after the second wait
    (event,) = events(trigger())
    assert event.payload["match"]["status"] == "ENDED"
    assert goals(event.payload["match"]) == ["A", "B", "A", "A", "B"]
    # Plenty of quota (1000 an hour): the poll interval, not less.
    assert waits.seconds == [30.0, 30.0]
    assert [c.status for c in sfi_sandbox.calls()] == [200, 200, 200]


def test_it_fires_on_any_of_several_statuses(sfi_sandbox: SandboxServer, waits: Waits) -> None:
    playing(sfi_sandbox)
    (event,) = events(trigger(status_list(["in_play", "ended"], "t")))
    assert (event.payload["match"]["status"], event.payload["match"]["timer"]) == ("IN PLAY", "00:00")
    assert waits.seconds == []


@pytest.mark.sfi_sandbox(rate_limit=10)
def test_a_small_quota_spreads_the_polls_until_the_reset(sfi_sandbox: SandboxServer, waits: Waits) -> None:
    playing(sfi_sandbox)
    waits.after[4] = sfi_sandbox.feed.stop_playing
    (event,) = events(trigger())
    assert event.payload["status"] == "reached"
    # 10 an hour, one left to others: after each answer the requests left but one are spread evenly
    # over what is left of the window (3600 s / 8, then 3150 s / 7...), never faster than the interval.
    assert waits.seconds == pytest.approx([450.0] * 4, abs=2.0)
    assert [c.status for c in sfi_sandbox.calls()] == [200] * 5


@pytest.mark.sfi_sandbox(rate_limit=2)
def test_a_spent_window_waits_for_the_reset_and_never_meets_a_429(sfi_sandbox: SandboxServer, waits: Waits) -> None:
    playing(sfi_sandbox)
    waits.after[3] = sfi_sandbox.feed.stop_playing
    (event,) = events(trigger())
    assert event.payload["status"] == "reached"
    # 2 an hour, one left to others: each answer leaves none to spend, so each poll waits for the next window.
    assert waits.seconds == pytest.approx([3600.0 + RESET_MARGIN_SECONDS] * 3, abs=1.0)
    assert [c.status for c in sfi_sandbox.calls()] == [200] * 4


def test_a_429_waits_until_the_reset(sfi_sandbox: SandboxServer, waits: Waits) -> None:
    sfi_sandbox.inject("rate_limit")  # as if the hour's quota were spent: reset in 3600 s, past the hook's retries
    (event,) = events(trigger())
    assert event.payload["status"] == "reached"
    assert waits.seconds == pytest.approx([3600.0 + RESET_MARGIN_SECONDS], abs=1.0)
    first, second = sfi_sandbox.calls()
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 3600  # on the sandbox's clock: not retried into the closed window


def test_transient_errors_are_polled_again_with_a_log_line(
    sfi_sandbox: SandboxServer,
    waits: Waits,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SFI_DEFAULT", sfi_sandbox.connection(max_attempts=1))  # no hook retries
    sfi_sandbox.inject("5xx")
    sfi_sandbox.inject("drop")
    with caplog.at_level(logging.WARNING):
        (event,) = events(trigger())
    assert event.payload["status"] == "reached"
    assert waits.seconds == [30.0, 30.0]
    assert [c.fault for c in sfi_sandbox.calls()] == ["5xx", "drop", None]
    # The trigger's logger is structlog's on recent Airflow (stdout), the standard one on 3.0 (both places).
    said = f"polling match {MATCH.match_id} again in 30 s"
    assert max(caplog.text.count(said), capsys.readouterr().out.count(said)) == 2


@pytest.mark.parametrize(
    ("key", "match_id", "error", "message"),
    [
        ("sandbox-key-basic", MATCH.match_id, SfiAuthError, "Token does not have permission"),
        ("sandbox-key-suspended", MATCH.match_id, SfiAuthError, "Token is suspended"),
        ("sandbox-key-pro", "ffffffffffffffff", SfiApiError, "Not Found"),
        ("sandbox-key-pro", "  ", SfiConfigError, "'i' is empty"),
    ],
)
def test_an_error_no_poll_can_cure_ends_it_with_an_error_event_of_its_class(
    sfi_sandbox: SandboxServer,
    waits: Waits,
    monkeypatch: pytest.MonkeyPatch,
    key: str,
    match_id: str,
    error: type[Exception],
    message: str,
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SFI_DEFAULT", sfi_sandbox.connection(key))
    (event,) = events(trigger(match_id=match_id))
    assert event.payload["status"] == "error"
    rebuilt_error = error_from_payload(event.payload)
    assert type(rebuilt_error) is error
    assert message in str(rebuilt_error)
    assert waits.seconds == []
    assert len(sfi_sandbox.calls()) == (0 if error is SfiConfigError else 1)


def test_a_missing_connection_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SFI_NOWHERE", raising=False)
    (event,) = events(trigger(sfi_conn_id="sfi_nowhere"))
    assert event.payload["status"] == "error"
    assert isinstance(error_from_payload(event.payload), SfiConfigError)
    assert "sfi_nowhere" in event.payload["message"]


def test_kwargs_round_trip_through_airflow_and_hold_no_secret(sfi_sandbox: SandboxServer) -> None:
    original = SfiMatchStatusTrigger(
        sfi_conn_id="sfi_default", match_id=MATCH.match_id, statuses=["IN PLAY", "ENDED"], poll_interval=12.5
    )
    classpath, kwargs = original.serialize()
    assert classpath == "airflow_sfi.triggers.match_status.SfiMatchStatusTrigger"
    assert kwargs == {
        "sfi_conn_id": "sfi_default",
        "match_id": MATCH.match_id,
        "statuses": ["IN PLAY", "ENDED"],
        "poll_interval": 12.5,
    }
    stored = json.dumps(BaseSerialization.serialize(kwargs))  # as the trigger table holds them
    assert BaseSerialization.deserialize(json.loads(stored)) == kwargs
    assert rebuilt(original).serialize() == (classpath, kwargs)
    shown = stored + repr(original)
    assert "sandbox-key-pro" not in shown and sfi_sandbox.url not in shown


# The decisions, shared with the sensor's poke and reschedule modes.


def window(remaining: int | None, reset_in: float | None, limit: int | None = 100) -> RateLimit:
    return RateLimit(limit, remaining, None if reset_in is None else NOW.add(seconds=reset_in))


@pytest.mark.parametrize(
    ("rate_limit", "expected"),
    [
        (None, 60.0),  # no headers
        (window(None, 3600), 60.0),
        (window(50, None), 60.0),
        (window(95, 3600), 60.0),  # plenty: 3600 s / 90 polls is 40 s, less than the interval
        (window(15, 3600), 360.0),  # 5 kept for others: 10 polls over the hour
        (window(6, 3600), 3600.0),  # one poll left: at the reset
        (window(5, 3600), 3600.0 + RESET_MARGIN_SECONDS),  # none left: after the reset
        (window(0, 100), 100.0 + RESET_MARGIN_SECONDS),
        (window(0, -5), 60.0),  # the reset has passed
    ],
)
def test_next_poll_in_spreads_what_is_left_of_the_window(rate_limit: RateLimit | None, expected: float) -> None:
    assert next_poll_in(60.0, rate_limit, NOW) == pytest.approx(expected)


def test_the_reserve_is_a_twentieth_of_the_limit_and_at_least_one() -> None:
    assert [quota_reserve(limit) for limit in (None, 0, 8, 20, 21, 1800)] == [1, 1, 1, 1, 2, 90]


def test_a_429_waits_for_its_reset_or_the_last_known_one() -> None:
    with_reset = SfiRateLimitError("429", reset_at=NOW.add(seconds=600))
    assert rate_limited_wait(with_reset, 60.0, None, NOW) == 600.0 + RESET_MARGIN_SECONDS
    assert rate_limited_wait(SfiRateLimitError("429", reset_at=NOW.add(seconds=5)), 60.0, None, NOW) == 60.0
    bare = SfiRateLimitError("429")
    assert rate_limited_wait(bare, 60.0, window(3, 900), NOW) == 900.0 + RESET_MARGIN_SECONDS
    assert rate_limited_wait(bare, 60.0, window(3, -10), NOW) == 60.0
    assert rate_limited_wait(bare, 60.0, None, NOW) == 60.0


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (SfiTransportError("refused"), True),
        (SfiResponseError("html"), True),
        (SfiApiError("down", http_status=503), True),
        (SfiApiError("down", http_status=200, api_status=500), True),
        (SfiApiError("not found", http_status=404), False),
        (SfiAuthError("plan", http_status=401), False),
        (SfiConfigError("bad"), False),
    ],
)
def test_which_errors_a_later_poll_may_cure(error: Any, transient: bool) -> None:
    assert is_transient(error) is transient


def test_statuses_are_compared_normalised() -> None:
    assert normalise_status("  in_play ") == "IN PLAY"
    assert normalise_status("Not   Started") == "NOT STARTED"
    assert status_list("ended", "t") == ["ENDED"]
    assert status_list(["Ended", "ENDED", "in play"], "t") == ["ENDED", "IN PLAY"]
    assert status_reached({"status": "ended"}, ["ENDED"])
    assert not status_reached({"status": "IN PLAY"}, ["ENDED"])
    assert not status_reached({}, ["ENDED"])
    assert not status_reached(["ENDED"], ["ENDED"])


def test_now_is_taken_when_not_given() -> None:
    soon = RateLimit(10, 0, pendulum.now("UTC").add(seconds=120))
    assert 120 <= next_poll_in(1.0, soon) <= 121 + RESET_MARGIN_SECONDS
    assert datetime.timedelta(seconds=rate_limited_wait(SfiRateLimitError("x", reset_at=soon.reset_at), 1.0, None)) > (
        datetime.timedelta(seconds=119)
    )
