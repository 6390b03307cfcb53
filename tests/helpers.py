"""Helpers shared by the tests."""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


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
    """

    def __init__(self) -> None:
        self.offset = 0.0
        self.slept_until: list[float] = []

    def __call__(self) -> float:
        return time.time() + self.offset

    async def sleep_until(self, moment: datetime.datetime) -> None:
        self.slept_until.append(moment.timestamp())
        self.offset = max(self.offset, moment.timestamp() - time.time())
