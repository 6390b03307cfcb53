"""Stopping tasks from a ``finally`` without losing the caller's own exception."""

from __future__ import annotations

import asyncio
import threading

from airflow_sfi.aio import in_thread, stop
from airflow_sfi.exceptions import SfiSubscriptionError
from tests.helpers import cancel_and_wait


def test_a_cancelled_caller_stays_cancelled_when_the_task_it_stops_had_failed() -> None:
    async def scenario() -> asyncio.Task[None]:
        async def fail() -> None:
            raise SfiSubscriptionError("the plan does not include channel(s) STATS", error_code="CHANNEL_NOT_ALLOWED")

        failed = asyncio.create_task(fail())

        async def caller() -> None:
            try:
                await asyncio.sleep(3600)
            finally:
                await stop(failed, None)

        task = asyncio.create_task(caller())
        while not failed.done():
            await asyncio.sleep(0)
        await cancel_and_wait(task)
        return task

    assert asyncio.run(scenario()).cancelled()


def test_stop_cancels_what_still_runs_and_waits_for_it() -> None:
    async def scenario() -> tuple[asyncio.Task[None], list[str]]:
        ended: list[str] = []

        async def work() -> None:
            try:
                await asyncio.sleep(3600)
            finally:
                await asyncio.sleep(0.01)  # its own cleanup, awaited before stop returns
                ended.append("work")

        task = asyncio.create_task(work())
        await asyncio.sleep(0)
        await stop(task)
        return task, ended

    task, ended = asyncio.run(scenario())
    assert task.cancelled() and ended == ["work"]


def test_in_thread_runs_off_the_loop_and_routes_sdk_calls_back_to_it() -> None:
    """
    Airflow 3.0 and 3.1's SDK calls in a trigger go ``async_to_sync`` to the triggerer's comms: from
    ``in_thread`` they must land on the running loop (where the comms lock is), not on a loop of their own.
    """
    from asgiref.sync import async_to_sync

    async def where() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def blocking_sdk_call() -> tuple[int, asyncio.AbstractEventLoop]:
        return threading.get_ident(), async_to_sync(where)()

    async def main() -> None:
        thread, loop = await in_thread(blocking_sdk_call)
        assert thread != threading.get_ident()
        assert loop is asyncio.get_running_loop()

    asyncio.run(main())
