"""asyncio helpers the feed, the refresh and the triggers share: ending tasks, and blocking calls from a loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def stop(*tasks: asyncio.Future[Any] | None) -> None:
    """
    Cancel ``tasks`` (None ones skipped) and wait until each has ended, dropping what they raised.

    Awaiting a cancelled task directly would raise its outcome: an error it hit just before the cancel
    would replace the caller's own exception (a cancellation of the caller above all, which then ran
    on as if never cancelled), and suppressing ``CancelledError`` around it would swallow the caller's.
    ``asyncio.wait`` raises neither, and still raises when the caller itself is cancelled meanwhile.

    :param tasks: the tasks or futures to stop.
    """
    running = {task for task in tasks if task is not None}
    for task in running:
        task.cancel()
    if running:
        await asyncio.wait(running)
    for task in running:
        if not task.cancelled():
            task.exception()  # retrieved: asyncio would log it as never retrieved


async def in_thread(func: Callable[..., T], *args: Any) -> T:
    """
    Run blocking ``func`` in a worker thread, from a trigger (or any coroutine).

    Unlike ``asyncio.to_thread``, Airflow SDK calls made in it (a connection, a Variable) reach the
    triggerer's supervisor through the running event loop: on Airflow 3.0 and 3.1 such a call from a
    bare thread races the triggerer's own messages ("Response read out of order!") and the triggerer
    exits. asgiref comes with Airflow, whose triggerer uses it for exactly these calls.

    :param func: the blocking callable.
    :param args: its positional arguments.
    """
    from asgiref.sync import sync_to_async

    return await sync_to_async(func, thread_sensitive=False)(*args)
