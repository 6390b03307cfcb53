"""Apache Airflow provider for the Soccer Football Info API: WebSocket tokens kept valid, and live match events."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.3.0"

# Public names load on first use, so `import airflow_sfi` stays cheap at DAG-parse time.
_LAZY = {
    "SfiHook": "airflow_sfi.hooks.sfi",
    "SfiAsyncHook": "airflow_sfi.hooks.sfi",
    "SfiFeedHook": "airflow_sfi.hooks.feed",
    "SfiWsTokenOperator": "airflow_sfi.operators.ws_token",
    "SfiToObjectStorageOperator": "airflow_sfi.transfers.sfi_to_object_storage",
    "SfiWsTokenExpirySensor": "airflow_sfi.sensors.ws_token",
    "SfiMatchEventSensor": "airflow_sfi.sensors.match_event",
    "SfiMatchEventTrigger": "airflow_sfi.triggers.match_event",
    "SfiMatchStatusSensor": "airflow_sfi.sensors.match_status",
    "Subscription": "airflow_sfi.protocol.messages",
    "match_events": "airflow_sfi.protocol.messages",
    "WsToken": "airflow_sfi.protocol.token",
}

__all__ = [
    "SfiAsyncHook",
    "SfiFeedHook",
    "SfiHook",
    "SfiMatchEventSensor",
    "SfiMatchEventTrigger",
    "SfiMatchStatusSensor",
    "SfiToObjectStorageOperator",
    "SfiWsTokenExpirySensor",
    "SfiWsTokenOperator",
    "Subscription",
    "WsToken",
    "__version__",
    "match_events",
]

if TYPE_CHECKING:
    from airflow_sfi.hooks.feed import SfiFeedHook
    from airflow_sfi.hooks.sfi import SfiAsyncHook, SfiHook
    from airflow_sfi.operators.ws_token import SfiWsTokenOperator
    from airflow_sfi.protocol.messages import Subscription, match_events
    from airflow_sfi.protocol.token import WsToken
    from airflow_sfi.sensors.match_event import SfiMatchEventSensor
    from airflow_sfi.sensors.match_status import SfiMatchStatusSensor
    from airflow_sfi.sensors.ws_token import SfiWsTokenExpirySensor
    from airflow_sfi.transfers.sfi_to_object_storage import SfiToObjectStorageOperator
    from airflow_sfi.triggers.match_event import SfiMatchEventTrigger


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'airflow_sfi' has no attribute {name!r}")
