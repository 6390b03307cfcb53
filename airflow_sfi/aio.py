"""Ending asyncio tasks from a ``finally``: the one helper the feed and its triggers share."""

from __future__ import annotations

import asyncio
from typing import Any


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
