"""
pytest plugin: the ``sfi_sandbox`` fixture. It is opt-in, so it costs nothing where it is not used.

To use it, add this line to your top-level ``conftest.py`` (or pass ``-p airflow_sfi.sandbox.pytest_plugin``):

    pytest_plugins = ["airflow_sfi.sandbox.pytest_plugin"]
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_sfi.sandbox.server import SandboxServer


@pytest.fixture
def sfi_sandbox(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxServer]:
    """
    A fresh sandbox API on a free loopback port, and ``sfi_default`` pointing at it (PRO key, direct).

    Options of :class:`~airflow_sfi.sandbox.Sandbox` come from ``@pytest.mark.sfi_sandbox(ttl=5, ...)``.
    """
    marker = request.node.get_closest_marker("sfi_sandbox")
    options = dict(marker.kwargs) if marker else {}
    with SandboxServer(**options) as api:
        monkeypatch.setenv("AIRFLOW_CONN_SFI_DEFAULT", api.connection())
        yield api


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sfi_sandbox(**options): options for the sfi_sandbox fixture's sandbox")
