"""
The quick slice that `make test-latest` runs on every Airflow minor with the newest releases its pins allow
(no lock): a hook call, a deferral through ``dag.test()`` and an environment-variable connection read in a
task, each against the sandbox. Only the public names of ``airflow_sfi`` are used, as in a user's DAG.

The DAGs are defined here, and this folder is a DAG bundle of its own while the tests run: from Airflow 3.3
on, ``dag.test()`` runs only a DAG that a configured bundle holds.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG, task
from packaging.requirements import Requirement

from airflow_sfi import SfiHook, SfiWsTokenExpirySensor, SfiWsTokenOperator
from airflow_sfi.sandbox import SandboxServer
from tests.helpers import run_dag

pytestmark = [pytest.mark.integration, pytest.mark.smoke]
REPO = Path(__file__).resolve().parent.parent.parent
TTL = 6  # seconds: the sensor below defers for about TTL - MARGIN
MARGIN = datetime.timedelta(seconds=3)
VARIABLE = "sfi_smoke_token"  # Airflow stores it encrypted (tests/conftest.py sets a Fernet key)
START = pendulum.datetime(2024, 1, 1, tz="UTC")

with DAG(dag_id="sfi_smoke_deferral", schedule=None, start_date=START, catchup=False) as DEFERRAL:
    get_token = SfiWsTokenOperator(task_id="get_token", required_channels=["MAIN"], variable_key=VARIABLE)
    wait = SfiWsTokenExpirySensor(
        task_id="wait_for_refresh", expires_at=get_token.output["expires_at"], renew_margin=MARGIN, deferrable=True
    )
    get_token >> wait

with DAG(dag_id="sfi_smoke_connection", schedule=None, start_date=START, catchup=False) as CONNECTION:

    @task
    def read_connection() -> dict[str, Any]:
        from airflow.providers.common.compat.sdk import BaseHook

        conn = BaseHook.get_connection("sfi_default")
        return {
            "conn_type": conn.conn_type,
            "host": conn.host,
            "key_is_the_sandbox_s": conn.password == "sandbox-key-pro",
            "auth_type": conn.extra_dejson.get("auth_type"),
        }

    read_connection()


@pytest.fixture(scope="module", autouse=True)
def airflow_db() -> Iterator[None]:
    from airflow.configuration import conf
    from airflow.utils import db

    bundles = [
        {
            "name": "sfi-smoke",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(Path(__file__).parent)},
        },
        *conf.getjson("dag_processor", "dag_bundle_config_list"),  # type: ignore[misc]
    ]
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(bundles))
        db.resetdb()
        yield


@pytest.fixture
def api() -> Iterator[SandboxServer]:
    with SandboxServer(ttl=TTL) as server:
        os.environ["AIRFLOW_CONN_SFI_DEFAULT"] = server.connection()
        try:
            yield server
        finally:
            del os.environ["AIRFLOW_CONN_SFI_DEFAULT"]


def test_the_hook_gets_a_token_through_an_environment_variable_connection(api: SandboxServer) -> None:
    token = SfiHook().get_ws_token()
    assert api.issued_tokens == [token.token]
    assert token.server.startswith(api.ws_url)
    assert 0 < token.seconds_left() <= TTL + 1  # expires_at is in whole seconds
    assert [c.endpoint for c in api.calls()] == ["ws/new"]


def test_a_deferrable_sensor_waits_in_the_trigger_and_the_run_succeeds(api: SandboxServer) -> None:
    from airflow.models import Variable

    run, tis, events = run_dag(DEFERRAL)

    assert run.state == "success"
    assert {t: str(ti.state) for t, ti in tis.items()} == {"get_token": "success", "wait_for_refresh": "success"}
    got = tis["get_token"].xcom_pull(task_ids="get_token")
    assert got["token"] == api.issued_tokens[0]
    # It waited for the refresh time, deferred (dag.test() records state events from Airflow 3.2 on).
    assert tis["wait_for_refresh"].end_date >= pendulum.parse(got["expires_at"]) - MARGIN
    if "wait_for_refresh" in events:
        assert events["wait_for_refresh"][:2] == ["running", "deferred"]
    assert json.loads(Variable.get(VARIABLE))["token"] == got["token"]  # stored encrypted, read back
    assert [c.endpoint for c in api.calls()] == ["ws/new"]


def test_a_task_reads_an_environment_variable_connection(api: SandboxServer) -> None:
    run, tis, _ = run_dag(CONNECTION)

    assert run.state == "success"
    assert tis["read_connection"].xcom_pull(task_ids="read_connection") == {
        "conn_type": "sfi",
        "host": api.url,
        "key_is_the_sandbox_s": True,
        "auth_type": "direct",
    }
    assert api.calls() == []


def pins_of(lines: list[str]) -> set[str]:
    return {str(Requirement(line)) for line in lines}


def in_files() -> dict[str, set[str]]:
    """Each minor's pins, from constraints/airflow-<minor>.in: what `make test-latest` resolves against."""
    return {
        path.stem.removeprefix("airflow-"): pins_of(
            [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
        )
        for path in (REPO / "constraints").glob("airflow-*.in")
    }


@pytest.mark.parametrize("page", ["README.md", "docs/compatibility.md"])
def test_the_install_commands_shown_have_the_pins_this_slice_runs_with(page: str) -> None:
    text = (REPO / page).read_text()
    shown = {
        match[1]: pins_of(re.findall(r'"([^"]+)"', match[0]))
        for match in re.findall(
            r'^(pip install airflow-provider-sfi "apache-airflow==(\d+\.\d+)\.\d+".*)$', text, re.MULTILINE
        )
    }
    expected = in_files()
    assert set(expected) == {"3.0", "3.1", "3.2", "3.3"}
    assert shown == expected
    if page == "docs/compatibility.md":  # and its table's row
        row = next(line for line in text.splitlines() if line.startswith("| pins it needs"))
        cells = [cell.strip() for cell in row.strip("|").split("|")][1:]
        in_table = dict(zip(["3.0", "3.1", "3.2", "3.3"], cells, strict=True))
        for minor, pins in expected.items():
            assert pins_of(re.findall(r"`([^`]+)`", in_table[minor])) == {
                pin for pin in pins if not pin.startswith("apache-airflow==")
            }, minor
