"""Helpers shared by the tests."""

from __future__ import annotations

import asyncio
import datetime
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def token_item(token: str, expires_at: str, /, **changes: object) -> dict[str, object]:
    """A ``ws/new`` result item; a field given as ``...`` is left out."""
    data: dict[str, object] = {
        "is_new": True,
        "token": token,
        "server": f"wss://ws-eu.soccerfootball.info/?token={token}",
        "max_connections": 2,
        "max_subscribe_per_connection": 2,
        "allowed_channels": ["MAIN"],
        "expires_at": expires_at,
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not ...}


def use_connection(
    monkeypatch: pytest.MonkeyPatch, conn: str | dict[str, object], conn_id: str = "sfi_default"
) -> None:
    """Define an Airflow connection through its ``AIRFLOW_CONN_<ID>`` environment variable."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", conn if isinstance(conn, str) else json.dumps(conn))


class SandboxClock:
    """
    The sandbox's clock, run ahead of real time instead of waiting: ``sleep_until`` jumps it to the moment.

    Pass the instance as the sandbox's ``clock`` and its ``sleep_until`` where the code under test waits.

    :param pause: real seconds each ``sleep_until`` takes before the jump (0: none). A loop that sleeps
        again at once after each wake-up, as the live feed's renewals do, then advances step by step
        instead of spinning through the sandbox's future.
    """

    def __init__(self, pause: float = 0.0) -> None:
        self.offset = 0.0
        self.pause = pause
        self.slept_until: list[float] = []

    def __call__(self) -> float:
        return time.time() + self.offset

    async def sleep_until(self, moment: datetime.datetime) -> None:
        if self.pause:
            await asyncio.sleep(self.pause)
        self.slept_until.append(moment.timestamp())
        self.offset = max(self.offset, moment.timestamp() - time.time())


class FixedClock:
    """A clock that stands still at ``now`` until a test moves it."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def drain_while(
    api: Any,
    stream: AsyncIterator[T],
    during: Callable[[], Any],
    settle: float = 0.5,
    timeout: float = 5.0,
    until: Callable[[list[T]], bool] | None = None,
) -> list[T]:
    """
    What ``stream`` yields while ``during`` runs in a thread, and ``settle`` seconds after (unless it ends); ``during``
    starts once the sandbox ``api`` holds a subscribed WebSocket connection opened by ``stream`` (or
    ``stream`` has ended): a connection of an earlier stream may not be recorded as closed yet.

    :param until: when given, the reading goes on after ``during`` until ``until(items so far)`` holds
        (within ``timeout``; the items are returned either way, for the caller's assertions to name what
        is missing), and only then for ``settle`` seconds more, to catch anything arriving late.
    """
    got: list[T] = []
    earlier = len(api.ws_connections())

    async def consume() -> None:
        async for item in stream:
            got.append(item)

    task = asyncio.create_task(consume())
    try:
        deadline = time.monotonic() + timeout
        while not task.done() and not any(
            c.closed_at is None and c.subscriptions for c in api.ws_connections()[earlier:]
        ):
            assert time.monotonic() < deadline, "no subscribed connection"
            await asyncio.sleep(0.02)
        if task.done():
            task.result()
        await asyncio.to_thread(during)
        if until is not None:
            deadline = time.monotonic() + timeout
            while not task.done() and not until(got) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        await asyncio.wait({task}, timeout=settle)  # a stream that ended has nothing more to yield
    finally:
        await cancel_and_wait(task)
    return got


def wait_for(condition: Callable[[], object], timeout: float = 5.0, what: str = "the condition") -> None:
    """Poll ``condition`` (from a thread, e.g. a ``during``) until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not come within {timeout:g} s"
        time.sleep(0.005)


async def cancel_and_wait(task: asyncio.Future[Any], timeout: float = 10.0) -> None:
    """Cancel ``task`` and wait for it to end, bounded: a task that ignores its cancellation fails, not hangs."""
    task.cancel()
    await asyncio.wait({task}, timeout=timeout)
    assert task.done(), f"still running {timeout:g} s after it was cancelled"


def when_subscribed(api: Any, topic: str, then: Callable[[], Any], timeout: float = 60.0) -> None:
    """Run ``then`` in a thread once a connection to the sandbox ``api`` holds ``topic`` (as a match starts)."""

    def wait_then() -> None:
        deadline = time.monotonic() + timeout
        while not any(topic in c.subscriptions and c.closed_at is None for c in api.ws_connections()):
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)
        then()

    threading.Thread(target=wait_then, daemon=True).start()


def rebuilt(trigger: Any) -> Any:
    """The trigger as the triggerer builds it from its row: classpath and kwargs, stored as Airflow does."""
    import importlib

    from airflow.serialization.serialized_objects import BaseSerialization

    classpath, kwargs = trigger.serialize()
    module, name = classpath.rsplit(".", 1)
    stored = json.loads(json.dumps(BaseSerialization.serialize(kwargs)))
    return getattr(importlib.import_module(module), name)(**BaseSerialization.deserialize(stored))


def run_dag(dag: Any) -> tuple[Any, dict[str, Any], dict[str, list[str]]]:
    """Run ``dag`` with ``dag.test()``; return the run, its task instances and each task's state events."""
    from airflow.models.log import Log
    from airflow.utils.session import create_session
    from sqlalchemy import select

    run = dag.test()
    tis = {ti.task_id: ti for ti in run.get_task_instances()}
    events: dict[str, list[str]] = {}
    with create_session() as session:
        for task_id, event in session.execute(
            select(Log.task_id, Log.event).where(Log.run_id == run.run_id).order_by(Log.id)
        ):
            events.setdefault(task_id, []).append(event)
    return run, tis, events


def fail_request(api: Any, number: int, kind: str = "malformed") -> None:
    """Make the ``number``-th request from now fail with ``kind`` (the sandbox's fault injection)."""
    sandbox = api.sandbox
    original = sandbox.next_fault
    seen = 0

    def next_fault() -> Any:
        nonlocal seen
        seen += 1
        if seen == number:
            sandbox.inject(kind)
        return original()

    sandbox.next_fault = next_fault  # type: ignore[method-assign]
