"""What differs between Airflow releases: the version flags, and blocking calls from triggers."""

from __future__ import annotations

import asyncio
import threading

from airflow_sfi import version_compat


def test_the_flags_follow_the_installed_airflow() -> None:
    from airflow import __version__
    from packaging.version import Version

    release = Version(__version__).release[:2]
    assert version_compat.AIRFLOW_V_3_1_PLUS is (release >= (3, 1))
    assert version_compat.AIRFLOW_V_3_2_PLUS is (release >= (3, 2))
    assert version_compat.AIRFLOW_V_3_3_PLUS is (release >= (3, 3))


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
        thread, loop = await version_compat.in_thread(blocking_sdk_call)
        assert thread != threading.get_ident()
        assert loop is asyncio.get_running_loop()

    asyncio.run(main())
