"""Registration with Airflow: entry point, connection form, CLI, test button, light imports."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from airflow_sfi.sandbox import SandboxServer
from airflow_sfi.version_compat import AIRFLOW_V_3_2_PLUS


def test_provider_info_is_found_through_the_entry_point() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    provider = manager.providers["airflow-provider-sfi"]
    assert provider.data["name"] == "Soccer Football Info"
    # trigger_class_name holds a module path, despite its name
    assert "airflow_sfi.triggers.ws_token" in {t.trigger_class_name for t in manager.trigger}
    if AIRFLOW_V_3_2_PLUS:  # where tasks look hooks up from 3.2 on
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

        hook = ProvidersManagerTaskRuntime().hooks["sfi"]
    else:
        hook = manager.hooks["sfi"]
    assert hook is not None and hook.hook_class_name == "airflow_sfi.hooks.sfi.SfiHook"
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


def form() -> dict[str, Any]:
    from airflow_sfi.get_provider_info import get_provider_info

    (conn_type,) = get_provider_info()["connection-types"]
    return conn_type


def parsed(**extra: object) -> Any:
    from airflow.sdk import Connection

    from airflow_sfi.config import SfiConfig

    conn = Connection(conn_id="form", conn_type="sfi", password="form-secret", extra=json.dumps(extra))
    return SfiConfig.from_connection(conn)


def test_the_form_accepts_exactly_what_the_hook_accepts() -> None:
    """Each extra's schema against SfiConfig: the bounds it shows are the bounds the hook enforces."""
    from airflow_sfi.config import AUTH_MODES
    from airflow_sfi.exceptions import SfiConfigError

    fields = form()["conn-fields"]
    assert set(fields) == {"auth_type", "rapidapi_host", "timeout", "max_attempts", "max_retry_wait"}
    assert fields["auth_type"]["schema"]["enum"] == sorted(AUTH_MODES)
    for auth_type in AUTH_MODES:
        assert parsed(auth_type=auth_type).auth_type == auth_type
    for name, field in fields.items():
        schema = field["schema"]
        assert "null" in schema["type"], f"{name} must stay optional"
        assert "default" not in schema  # the UI would freeze it into every saved connection
        assert "exclusiveMinimum" not in schema  # Airflow's form ignores it
        if "minimum" in schema:
            lowest = schema["minimum"]
            assert getattr(parsed(**{name: lowest}), name) == lowest
            with pytest.raises(SfiConfigError, match=f"extra {name!r} must be a number of at least"):
                parsed(**{name: lowest - 0.0005})
        # The description names the default the hook applies when the field is left empty.
        default = getattr(parsed(), name)
        shown = f"{default:g}" if isinstance(default, float) else str(default)
        assert shown in field["description"], name


def test_the_form_hides_what_the_base_url_covers() -> None:
    behaviour = form()["ui-field-behaviour"]
    assert behaviour["hidden-fields"] == ["login", "schema"]
    assert parsed().base_url == "https://api.soccerfootball.info"


def test_connections_test_command(
    sfi_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`airflow connections test`, parsed and run as the CLI does: Airflow finds the hook for conn_type 'sfi'."""
    from airflow.cli import cli_parser

    monkeypatch.setenv("AIRFLOW__CORE__TEST_CONNECTION", "Enabled")
    monkeypatch.setenv("AIRFLOW_CONN_SFI_DEFAULT", sfi_sandbox.connection())
    args = cli_parser.get_parser().parse_args(["connections", "test", "sfi_default"])
    args.func(args)
    assert "Connection success!" in capsys.readouterr().out
    assert len(sfi_sandbox.calls("ws/new")) == 1


def test_form_widgets_are_registered_from_airflow_3_2() -> None:
    """Airflow reads the declarative form from 3.2 on; below, the form has the standard fields and Extra."""
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    fields = ("auth_type", "rapidapi_host", "timeout", "max_attempts", "max_retry_wait")
    names = [f"extra__sfi__{field}" for field in fields]
    registered = [name for name in names if name in manager.connection_form_widgets]
    assert registered == (names if AIRFLOW_V_3_2_PLUS else [])
    assert ("sfi" in manager.field_behaviours) is AIRFLOW_V_3_2_PLUS


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
