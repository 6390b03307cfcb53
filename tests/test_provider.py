"""Registration with Airflow: entry point, connection form, CLI, test button, light imports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_sfi.sandbox import SandboxServer

AIRFLOW = str(Path(sys.executable).parent / "airflow")


def airflow_cli(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [AIRFLOW, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_provider_info_is_found_through_the_entry_point() -> None:
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    manager = ProvidersManager()
    provider = manager.providers["airflow-provider-sfi"]
    assert provider.data["name"] == "Soccer Football Info"
    # trigger_class_name holds a module path, despite its name
    assert "airflow_sfi.triggers.ws_token" in {t.trigger_class_name for t in manager.trigger}
    hook = ProvidersManagerTaskRuntime().hooks["sfi"]
    assert hook is not None and hook.hook_class_name == "airflow_sfi.hooks.api.SfiHook"
    assert hook.connection_id_attribute_name == "sfi_conn_id"


def test_every_listed_module_imports() -> None:
    import importlib

    from airflow_sfi.get_provider_info import get_provider_info

    info = get_provider_info()
    for kind in ("hooks", "operators", "sensors", "triggers"):
        for entry in info[kind]:
            for module in entry["python-modules"]:
                importlib.import_module(module)
    (conn_type,) = info["connection-types"]
    module, _, name = conn_type["hook-class-name"].rpartition(".")
    assert getattr(importlib.import_module(module), name).conn_type == conn_type["connection-type"]


def test_connection_form_fields_match_what_the_hook_reads() -> None:
    from airflow_sfi.config import AUTH_MODES, SfiConfig
    from airflow_sfi.get_provider_info import get_provider_info

    (conn_type,) = get_provider_info()["connection-types"]
    fields = conn_type["conn-fields"]
    assert fields["auth_type"]["schema"]["enum"] == sorted(AUTH_MODES)
    defaults = {name: field.default for name, field in SfiConfig.__dataclass_fields__.items()}
    for name in ("rapidapi_host", "timeout", "max_attempts", "max_retry_wait"):
        assert fields[name]["schema"]["default"] == defaults[name]


def test_field_behaviour_relabels_and_hides() -> None:
    from airflow.providers_manager import ProvidersManager

    behaviour = ProvidersManager().field_behaviours["sfi"]
    assert behaviour["hidden_fields"] == ["login"]
    assert behaviour["relabeling"]["password"] == "API token / RapidAPI key"


def test_connections_test_command(sfi_sandbox: SandboxServer) -> None:
    """The one CLI round trip kept: Airflow finds the hook for conn_type 'sfi' and calls test_connection."""
    env = {"AIRFLOW__CORE__TEST_CONNECTION": "Enabled", "AIRFLOW_CONN_SFI_DEFAULT": sfi_sandbox.connection()}
    out = airflow_cli("connections", "test", "sfi_default", env=env)
    assert "Connection success!" in out
    assert len(sfi_sandbox.calls("ws/new")) == 1


def test_form_widgets_are_registered() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    for field in ("auth_type", "rapidapi_host", "timeout", "max_attempts", "max_retry_wait"):
        assert f"extra__sfi__{field}" in manager.connection_form_widgets


@pytest.mark.parametrize("name", ["SfiHook", "SfiWsTokenOperator", "SfiWsTokenExpirySensor", "WsToken"])
def test_lazy_top_level_names(name: str) -> None:
    import airflow_sfi

    assert getattr(airflow_sfi, name).__name__ == name
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        airflow_sfi.Nope  # noqa: B018


def test_import_airflow_sfi_is_light() -> None:
    code = (
        "import sys, airflow_sfi, airflow_sfi.sandbox; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('airflow', 'requests', 'pendulum')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
