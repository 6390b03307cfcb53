"""Apache Airflow provider for the Soccer Football Info API: WebSocket tokens, kept valid."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

# Public names load on first use, so `import airflow_sfi` stays cheap at DAG-parse time.
_LAZY = {
    "SfiHook": "airflow_sfi.hooks.api",
    "SfiWsTokenOperator": "airflow_sfi.operators.ws_token",
    "SfiWsTokenExpirySensor": "airflow_sfi.sensors.ws_token",
    "WsToken": "airflow_sfi.token",
}

__all__ = ["SfiHook", "SfiWsTokenExpirySensor", "SfiWsTokenOperator", "WsToken", "__version__"]

if TYPE_CHECKING:
    from airflow_sfi.hooks.api import SfiHook
    from airflow_sfi.operators.ws_token import SfiWsTokenOperator
    from airflow_sfi.sensors.ws_token import SfiWsTokenExpirySensor
    from airflow_sfi.token import WsToken


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'airflow_sfi' has no attribute {name!r}")
