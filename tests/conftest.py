"""Test settings: a private AIRFLOW_HOME, set before anything imports airflow."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_home = tempfile.mkdtemp(prefix="sfi-airflow-home-")
os.environ["AIRFLOW_HOME"] = _home
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "example_dags")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_home}/airflow.db"
os.environ.pop("AIRFLOW_CONN_SFI_DEFAULT", None)


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
