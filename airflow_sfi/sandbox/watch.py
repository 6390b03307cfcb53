"""A consumer's view of the rotation: how long the token last published was not valid on the sandbox."""

from __future__ import annotations

import threading
from collections.abc import Callable

from airflow_sfi.sandbox.rest import Sandbox


class GapWatcher:
    """
    Poll what was published (the token a consumer would read now) and add up the time it was not valid.

    Time is the sandbox's clock; a poll that finds nothing published yet counts nothing. Use it as a
    context manager, or ``start()`` and ``stop()``.

    :param sandbox: the sandbox whose token records decide validity.
    :param read: returns the token published now, or None; it must not raise.
    :param every: seconds between polls, which bounds how finely a gap is measured.
    """

    def __init__(self, sandbox: Sandbox, read: Callable[[], str | None], every: float = 0.1) -> None:
        self.sandbox = sandbox
        self.read = read
        self.every = every
        self.polls = 0
        self.total_gap = 0.0
        self.longest_gap = 0.0
        self.gaps = 0
        self._gap_started: float | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sfi-gap-watcher", daemon=True)

    def __enter__(self) -> GapWatcher:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> GapWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._close_gap(self.sandbox.clock())

    def poll(self) -> None:
        """Read what is published now and check it against the sandbox (the thread does this every ``every``)."""
        token = self.read()
        now = self.sandbox.clock()
        self.polls += 1
        if token is None or self.sandbox.valid_at(token, now):
            self._close_gap(now)
        elif self._gap_started is None:
            self._gap_started = now
            self.gaps += 1

    def _run(self) -> None:
        while not self._stopping.wait(self.every):
            self.poll()

    def _close_gap(self, now: float) -> None:
        if self._gap_started is not None:
            gap = now - self._gap_started
            self.total_gap += gap
            self.longest_gap = max(self.longest_gap, gap)
            self._gap_started = None
