"""A local stand-in for the Soccer Football Info API, for demos and tests (yours too).

from airflow_sfi.sandbox import SandboxServer

with SandboxServer(ttl=5) as api:
    os.environ["AIRFLOW_CONN_SFI_DEFAULT"] = api.connection("sandbox-key-mega")
    ...
    assert len(api.calls("ws/new")) == 1

The tokens' ``server`` is the sandbox's own WebSocket server (``api.ws_url``); ``api.play()`` plays
:func:`default_matches` on it, ``api.emit(...)`` sends one event, ``api.inject_ws(...)`` breaks it.
The REST data endpoints (:data:`DATA_ENDPOINTS`) serve the same matches, as far as they were played.

:mod:`~airflow_sfi.sandbox.rest` holds the behaviour (:class:`Sandbox`), :mod:`~airflow_sfi.sandbox.server`
the HTTP transport (:class:`SandboxServer`), :mod:`~airflow_sfi.sandbox.live` the WebSocket's rules
(:class:`Feed`) and :mod:`~airflow_sfi.sandbox.ws` its transport.
"""

from airflow_sfi.sandbox.live import (
    EmittedEvent,
    Feed,
    MatchScript,
    Playback,
    ScriptedEvent,
    WsConnectionRecord,
    default_matches,
)
from airflow_sfi.sandbox.rest import (
    DATA_ENDPOINTS,
    DEFAULT_KEYS,
    FAULTS,
    PER_PAGE,
    PLANS,
    RANDOM_FAULTS,
    RequestRecord,
    Sandbox,
    SandboxKey,
    TokenRecord,
)
from airflow_sfi.sandbox.server import SandboxServer
from airflow_sfi.sandbox.watch import GapWatcher

__all__ = [
    "DATA_ENDPOINTS",
    "DEFAULT_KEYS",
    "FAULTS",
    "PER_PAGE",
    "PLANS",
    "RANDOM_FAULTS",
    "EmittedEvent",
    "Feed",
    "GapWatcher",
    "MatchScript",
    "Playback",
    "RequestRecord",
    "Sandbox",
    "SandboxKey",
    "SandboxServer",
    "ScriptedEvent",
    "TokenRecord",
    "WsConnectionRecord",
    "default_matches",
]
