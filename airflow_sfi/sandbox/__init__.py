"""A local stand-in for the Soccer Football Info API, for demos and tests (yours too).

from airflow_sfi.sandbox import SandboxServer

with SandboxServer(ttl=5) as api:
    os.environ["AIRFLOW_CONN_SFI_DEFAULT"] = api.connection("sandbox-key-mega")
    ...
    assert len(api.calls("ws/new")) == 1

:mod:`~airflow_sfi.sandbox.api` holds the behaviour (:class:`Sandbox`), :mod:`~airflow_sfi.sandbox.server`
the HTTP transport (:class:`SandboxServer`).
"""

from airflow_sfi.sandbox.api import (
    DEFAULT_KEYS,
    FAULTS,
    PLANS,
    RequestRecord,
    Sandbox,
    SandboxKey,
    TokenRecord,
)
from airflow_sfi.sandbox.server import SandboxServer
from airflow_sfi.sandbox.watch import GapWatcher

__all__ = [
    "DEFAULT_KEYS",
    "FAULTS",
    "PLANS",
    "GapWatcher",
    "RequestRecord",
    "Sandbox",
    "SandboxKey",
    "SandboxServer",
    "TokenRecord",
]
