"""The live-feed triggers, run as the triggerer runs them (one asyncio loop) against the sandbox."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any

import pytest

from airflow_sfi.exceptions import SfiSubscriptionError
from airflow_sfi.hooks.sfi import SfiHook
from airflow_sfi.sandbox import SandboxServer
from airflow_sfi.triggers import match_event as feed_triggers
from airflow_sfi.triggers.match_event import (
    FLUSH_MARKER,
    STATE_KEY,
    SfiMatchEventTrigger,
    SfiMatchEventWaitTrigger,
)
from tests.helpers import cancel_and_wait, drain_while, rebuilt, wait_for

MATCH = "0123456789abcdef"
LEAGUE = "fedcba9876543210"
OTHER = "1111111111111111"
# How long after the last expected payload a test keeps reading, for anything arriving late.
SETTLE = 0.15


@pytest.fixture(autouse=True)
def no_handoff_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """A restored watcher starts at once (the tests that need the handoff set its wait themselves)."""
    monkeypatch.setattr(feed_triggers, "HANDOFF_SECONDS", 0.0)


class Store:
    """Stands in for the asset state store the triggerer injects (an RPC to its supervisor)."""

    def __init__(self, serves_one_asset: bool = True) -> None:
        self.values: dict[str, Any] = {}
        self.serves_one_asset = serves_one_asset

    async def aget(self, key: str, default: Any = None) -> Any:
        if not self.serves_one_asset:
            raise ValueError("Task has 2 concrete inlets and outlets")
        return json.loads(json.dumps(self.values.get(key, default)))

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = json.loads(json.dumps(value))


def goal_watcher(store: Any) -> Any:
    """A goal watcher, rebuilt from its kwargs, that keeps its state in ``store``: a restart is a second one."""
    trigger = rebuilt(SfiMatchEventTrigger(event_types=["goal"]))
    trigger.asset_state_store = store
    return trigger


async def fire(
    api: SandboxServer, trigger: Any, during: Callable[[], Any], until: Callable[[list[Any]], bool] | None = None
) -> list[dict[str, Any]]:
    """
    Run the trigger while ``during`` runs in a thread (once it is connected), then until ``until(payloads so
    far)`` holds, then :data:`SETTLE` s more; the payloads it yielded.
    """
    events = await drain_while(
        api, trigger.run(), during, settle=SETTLE, until=None if until is None else lambda got: until(payloads(got))
    )
    return payloads(events)


def payloads(events: list[Any]) -> list[dict[str, Any]]:
    return [event.payload for event in events]


def fired(n: int) -> Callable[[list[Any]], bool]:
    """An ``until`` for :func:`fire`: ``n`` payloads are in."""
    return lambda got: len(got) >= n


def vouched(store: Store, n: int) -> Callable[[list[Any]], bool]:
    """An ``until`` for :func:`fire`: ``n`` payloads are in, and the stored state vouches for each."""
    return lambda got: len(got) >= n and len(store.values.get(STATE_KEY, {}).get("keys", [])) >= n


def goal(api: SandboxServer, n: int, league: str = LEAGUE, type_: str = "goal") -> None:
    api.emit("MAIN", type_, match_id=MATCH, league_id=league, data={"n": n})


def test_the_watcher_fires_for_matching_events_and_stores_its_state(
    sfi_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed_triggers, "VOUCH_AFTER_SECONDS", 0.1)
    trigger = rebuilt(SfiMatchEventTrigger(scope="league", scope_id=LEAGUE, event_types=["goal"]))
    trigger.asset_state_store = store = Store()

    def play() -> None:
        goal(sfi_sandbox, 1)
        goal(sfi_sandbox, 2, league=OTHER)
        goal(sfi_sandbox, 3, type_="halftime")
        goal(sfi_sandbox, 4)

    fired_ = asyncio.run(fire(sfi_sandbox, trigger, play, vouched(store, 2)))
    assert [(p["type"], p["data"]["n"], p["league_id"]) for p in fired_] == [("goal", 1, LEAGUE), ("goal", 4, LEAGUE)]
    keys = {"key", "channel", "type", "match_id", "league_id", "ts", "data", "backfilled"}
    assert all(set(p) == keys and p["backfilled"] is False for p in fired_)
    state = store.values[STATE_KEY]
    # The stored state vouches for what was fired (not the halftime, which was not); the watermark is goal 4's.
    assert [key for key, _ in state["keys"]] == [p["key"] for p in fired_]
    assert state["watermark"] == fired_[-1]["ts"]


@pytest.mark.sfi_sandbox(replay=10)
def test_a_restarted_watcher_does_not_fire_again_for_what_the_server_replays(
    sfi_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed_triggers, "VOUCH_AFTER_SECONDS", 0.1)
    store = Store()
    first = goal_watcher(store)
    before = asyncio.run(fire(sfi_sandbox, first, lambda: [goal(sfi_sandbox, n) for n in (1, 2, 3)], vouched(store, 3)))
    assert [p["data"]["n"] for p in before] == [1, 2, 3]

    second = goal_watcher(store)
    after = asyncio.run(fire(sfi_sandbox, second, lambda: goal(sfi_sandbox, 4), fired(1)))
    assert [p["data"]["n"] for p in after] == [4]
    # The server did replay the three goals to the new connection: the stored state dropped them.
    last = sfi_sandbox.ws_connections()[-1]
    assert last.subscriptions == ("MAIN:all",)
    assert sum(e.recipients for e in sfi_sandbox.emitted()) == 4


@pytest.mark.sfi_sandbox(replay=10)
def test_a_watcher_stopped_right_after_firing_fires_again_rather_than_lose_the_event(
    sfi_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stopped before the triggerer could have stored what it fired: the state does not vouch for it yet.
    monkeypatch.setattr(feed_triggers, "VOUCH_AFTER_SECONDS", 60)
    store = Store()
    first = goal_watcher(store)
    before = asyncio.run(fire(sfi_sandbox, first, lambda: [goal(sfi_sandbox, n) for n in (1, 2)], fired(2)))
    assert [p["data"]["n"] for p in before] == [1, 2]
    assert store.values[STATE_KEY]["keys"] == []  # the baseline only: nothing vouched for

    second = goal_watcher(store)
    after = asyncio.run(fire(sfi_sandbox, second, lambda: goal(sfi_sandbox, 3), fired(3)))
    assert [p["data"]["n"] for p in after] == [1, 2, 3]  # replayed and fired again: at least once
    assert [p["key"] for p in after[:2]] == [p["key"] for p in before]  # the same keys, for consumers to drop


@pytest.mark.sfi_sandbox(replay=10)
def test_a_watcher_cancelled_with_its_triggerer_running_is_taken_over_without_firing_again(
    sfi_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its triggerer missed its heartbeats: another starts the watcher while the first still runs it, and the first
    # cancels it at its next loop (on_kill) with what it fired not yet vouched for by the timer.
    monkeypatch.setattr(feed_triggers, "VOUCH_AFTER_SECONDS", 60)
    monkeypatch.setattr(feed_triggers, "HANDOFF_SECONDS", 0.3)
    store = Store()
    first, second = goal_watcher(store), goal_watcher(store)

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        got: list[Any] = []

        async def consume() -> None:
            async for event in first.run():
                got.append(event)

        running = asyncio.create_task(consume())
        subscribed = lambda: any(c.closed_at is None and c.subscriptions for c in sfi_sandbox.ws_connections())  # noqa: E731
        await asyncio.to_thread(wait_for, subscribed, 5.0, "the first watcher's subscription")
        await asyncio.to_thread(lambda: [goal(sfi_sandbox, n) for n in (1, 2)])
        while len(got) < 2:
            await asyncio.sleep(0.01)
        taking_over = asyncio.create_task(fire(sfi_sandbox, second, lambda: goal(sfi_sandbox, 3), fired(1)))
        await asyncio.sleep(0.1)  # the second started and read the state; the first is cancelled only now
        running.cancel("user action")
        await asyncio.wait({running})
        await first.on_kill()
        return payloads(got), await taking_over

    before, after = asyncio.run(scenario())
    assert [p["data"]["n"] for p in before] == [1, 2]
    # The server replayed goals 1 and 2 to the second's connection: the state stored on cancel dropped them.
    assert [p["data"]["n"] for p in after] == [3]


@pytest.mark.sfi_sandbox(replay=10)
def test_without_a_single_asset_store_the_state_lives_in_memory(sfi_sandbox: SandboxServer) -> None:
    trigger = rebuilt(SfiMatchEventTrigger(event_types=["goal"]))
    trigger.asset_state_store = store = Store(serves_one_asset=False)
    fired_ = asyncio.run(fire(sfi_sandbox, trigger, lambda: goal(sfi_sandbox, 1), fired(1)))
    assert [p["data"]["n"] for p in fired_] == [1]
    assert store.values == {}


@pytest.mark.sfi_sandbox(replay=10)
def test_below_airflow_3_3_there_is_no_state_store_and_dedupe_is_in_memory(sfi_sandbox: SandboxServer) -> None:
    """Airflow 3.0-3.2 inject no asset state store (no attribute at all): a reconnect's replay is still dropped."""
    trigger = rebuilt(SfiMatchEventTrigger(event_types=["goal"]))
    vars(trigger).pop("asset_state_store", None)

    def goals_around_a_reconnect() -> None:
        goal(sfi_sandbox, 1)
        goal(sfi_sandbox, 2)
        assert sfi_sandbox.inject_ws("drop") == 1
        deadline = time.monotonic() + 5
        while not any(c.closed_at is None and c.subscriptions for c in sfi_sandbox.ws_connections()[1:]):
            assert time.monotonic() < deadline, "no second subscribed connection"
            time.sleep(0.02)
        goal(sfi_sandbox, 3)

    fired_ = asyncio.run(fire(sfi_sandbox, trigger, goals_around_a_reconnect, fired(3)))
    assert [p["data"]["n"] for p in fired_] == [1, 2, 3]
    # Each goal reached one connection live; the second connection also got goals 1 and 2 again
    # (replay=10, after its subscribe), and the in-memory dedupe dropped them.
    assert [e.recipients for e in sfi_sandbox.emitted()] == [1, 1, 1]
    assert len(sfi_sandbox.ws_connections()) == 2


def test_a_configuration_error_is_logged_and_retried_slowly_never_raised(
    sfi_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(feed_triggers, "CONFIGURATION_RETRY_SECONDS", 0.1)
    trigger = rebuilt(SfiMatchEventTrigger(channel="STATS"))  # the PRO plan has MAIN only
    SfiHook().config  # noqa: B018 - the first connection lookup of a process takes 0.9 s on Airflow 3.0-3.1

    async def run_until_three_attempts() -> None:
        task = asyncio.create_task(anext(trigger.run()))
        deadline = time.monotonic() + 30
        while len(sfi_sandbox.calls("ws/new")) < 3 and time.monotonic() < deadline:
            assert not task.done()  # neither an event nor an exception: it waits, then tries again
            await asyncio.sleep(0.02)
        await cancel_and_wait(task)

    asyncio.run(run_until_three_attempts())
    attempts = [c.at for c in sfi_sandbox.calls("ws/new")]
    assert len(attempts) >= 3, "the watcher did not try again"
    # One attempt per retry period, no storm (a slow machine only lengthens the gaps).
    assert all(later - earlier >= 0.1 for earlier, later in itertools.pairwise(attempts))
    assert sfi_sandbox.ws_connections() == []
    out = capfd.readouterr().out
    assert "cannot run as configured" in out and "STATS" in out


def test_a_cancel_that_races_a_configuration_error_still_cancels_the_watcher() -> None:
    # The triggerer cancels a watcher just as its feed fails: the failure must not replace the
    # cancellation, or the watcher would log it, wait and run on for good.
    trigger = rebuilt(SfiMatchEventTrigger(scope="league", scope_id=LEAGUE))

    async def scenario() -> asyncio.Task[Any]:
        failed = asyncio.Event()

        async def matching(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
            failed.set()
            await asyncio.sleep(0)  # the cancel lands here, with the failure on its way
            raise SfiSubscriptionError("the plan does not include channel(s) STATS", error_code="CHANNEL_NOT_ALLOWED")
            yield  # an async generator

        trigger.matching = matching  # type: ignore[method-assign]
        task = asyncio.create_task(anext(trigger.run()))
        await failed.wait()  # the feed is failing; the watcher has not seen it yet
        await cancel_and_wait(task)
        return task

    assert asyncio.run(scenario()).cancelled()


def test_the_wait_trigger_fires_once_with_the_first_match(sfi_sandbox: SandboxServer) -> None:
    trigger = rebuilt(SfiMatchEventWaitTrigger(scope="match", scope_id=MATCH, event_types=["match_end"]))

    def play() -> None:
        goal(sfi_sandbox, 1)
        goal(sfi_sandbox, 2, type_="match_end")
        goal(sfi_sandbox, 3, type_="match_end")

    fired_ = asyncio.run(fire(sfi_sandbox, trigger, play, fired(1)))
    assert len(fired_) == 1
    assert fired_[0]["status"] == "event"
    assert (fired_[0]["event"]["type"], fired_[0]["event"]["data"]) == ("match_end", {"n": 2})


def test_the_wait_trigger_reports_a_configuration_error_as_an_event(sfi_sandbox: SandboxServer) -> None:
    trigger = rebuilt(SfiMatchEventWaitTrigger(channel="ODDS"))

    async def first() -> Any:
        return await anext(trigger.run())

    event = asyncio.run(first())
    assert event.payload["status"] == "error"
    assert "ODDS" in event.payload["message"]


def test_a_burst_is_followed_by_one_flush_marker_and_a_lone_event_by_none(
    sfi_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed_triggers, "FLUSH_AFTER_SECONDS", 0.1)
    trigger = rebuilt(SfiMatchEventTrigger(event_types=["goal"]))

    def play() -> None:
        goal(sfi_sandbox, 1)  # alone: nothing waits behind it
        time.sleep(0.2)  # twice FLUSH_AFTER_SECONDS, for a flush that must not come
        for n in (2, 3, 4):  # a burst
            goal(sfi_sandbox, n)

    flushed = asyncio.run(fire(sfi_sandbox, trigger, play, lambda got: bool(got) and got[-1]["type"] == "flush"))
    kinds = [p.get("data", {}).get("n", p["type"]) for p in flushed]
    assert kinds == [1, 2, 3, 4, "flush"]
    assert flushed[-1] == {**FLUSH_MARKER, "watermark": flushed[-2]["ts"]}
    assert "54659" in flushed[-1]["about"]  # the marker names why it exists, in the asset's history


def test_a_fired_event_shows_in_one_short_line_and_carries_its_whole_payload() -> None:
    from airflow.triggers.base import TriggerEvent

    from airflow_sfi.triggers.match_event import _Fired

    payload = {"key": "MAIN:m:goal:A:71:3-1", "type": "goal", "match_id": "m", "backfilled": True, "data": {"n": 1}}
    fired = _Fired({"status": "event", "event": payload})
    assert isinstance(fired, TriggerEvent)
    assert fired.payload == {"status": "event", "event": payload}
    assert TriggerEvent.model_validate(fired.model_dump()).payload == fired.payload  # as the supervisor gets it
    assert repr(fired) == str(fired) == "TriggerEvent<goal of match m, backfilled>"
    assert repr(_Fired({**FLUSH_MARKER, "watermark": 1})) == "TriggerEvent<flush marker, not a live event>"


def test_a_watcher_restarted_before_it_fired_anything_fetches_what_it_missed_through_rest(
    sfi_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from airflow_sfi.sandbox import default_matches

    monkeypatch.setattr(feed_triggers, "VOUCH_AFTER_SECONDS", 0.05)
    # The first default match, under an id REST knows only once it plays: played until minute 30, then on.
    match = dataclasses.replace(default_matches()[0], match_id="00000000fe5c0a00")
    store = Store()

    def watcher() -> Any:
        trigger = rebuilt(SfiMatchEventTrigger(scope="match", scope_id=match.match_id, event_types=["halftime"]))
        trigger.asset_state_store = store
        return trigger

    async def scenario() -> list[dict[str, Any]]:
        first = asyncio.create_task(anext(watcher().run()))
        # Its first REST look (the match is unknown yet): the baseline, stored before it has fired anything.
        while "before" not in store.values.get(STATE_KEY, {}):
            await asyncio.sleep(0.01)
        playback = sfi_sandbox.play([match], minute_seconds=0.01)
        while (playback.minute or 0) < 30:
            await asyncio.sleep(0.01)
        await cancel_and_wait(first)  # the triggerer dies; halftime comes while no watcher runs
        await asyncio.to_thread(playback.wait, 10)
        second = watcher().run()
        return [(await anext(second)).payload]

    (payload,) = asyncio.run(scenario())
    assert (payload["type"], payload["match_id"], payload["backfilled"]) == ("halftime", match.match_id, True)


def test_a_watcher_dag_file_imports_neither_requests_nor_websockets() -> None:
    # Every run of a watcher's DAG parses its file in the worker: only what the trigger's kwargs need. Read from the
    # modules' top-level imports (a subprocess importing Airflow would cost seconds).
    import ast
    from pathlib import Path

    root = Path(feed_triggers.__file__).parent.parent

    def source(module: str) -> Path | None:
        path = root.joinpath(*module.split(".")[1:])
        return (
            path / "__init__.py"
            if path.is_dir()
            else path.with_suffix(".py")
            if path.with_suffix(".py").is_file()
            else None
        )

    seen: set[str] = set()
    outside: set[str] = set()
    todo = ["airflow_sfi.triggers.match_event", "airflow_sfi.protocol.messages"]
    while todo:
        module = todo.pop()
        path = source(module)
        if module in seen or path is None:
            continue
        seen.add(module)
        for node in ast.parse(path.read_text()).body:  # top level only: imports inside functions wait for a call
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            else:
                continue
            for name in names:
                if name.startswith("airflow_sfi"):
                    todo.append(name)
                else:
                    outside.add(name.split(".")[0])
    assert "airflow_sfi.protocol.envelope" in seen  # the walk reached the module that uses requests
    assert not outside & {"requests", "websockets"}
