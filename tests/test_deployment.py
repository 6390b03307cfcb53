"""
The provider in a running Airflow: scheduler with LocalExecutor, DAG processor, triggerer and API
server as separate processes, against the sandbox API on loopback. Run by `make test-deployment`.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_sfi.sandbox import SandboxServer
from tests.deployment import Deployment

pytestmark = pytest.mark.deployment

TTL = 20
MARGIN = 8  # wide enough that refresh_token, started seconds after the sensor, still meets the old token
ROTATIONS = 3
SECRET_REFUSED = "refused-secret-key-1"
SECRET_BAD = "bad-secret-key-2"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def connection(**fields: Any) -> str:
    return json.dumps({"conn_type": "sfi", **fields})


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home: Path = tmp_path_factory.mktemp("deployment") / "airflow"
    with SandboxServer(ttl=TTL) as api:
        env = {
            "SFI_REFRESH_MARGIN_SECONDS": str(MARGIN),
            "AIRFLOW_CONN_SFI_DEFAULT": api.connection("sandbox-key-pro"),
            "AIRFLOW_CONN_SFI_RAPIDAPI": api.connection("sandbox-key-ultra", "rapidapi"),
            "AIRFLOW_CONN_SFI_BADKEY": api.connection(SECRET_BAD),
            "AIRFLOW_CONN_SFI_REFUSED": connection(
                host=f"http://127.0.0.1:{closed_port()}", password=SECRET_REFUSED, extra={"max_attempts": 2}
            ),
        }
        with Deployment(home, env) as airflow:
            yield airflow, api


def task_states(airflow: Deployment, dag_id: str, run_id: str) -> dict[str, str]:
    rows = airflow.query("SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", dag_id, run_id)
    return dict(rows)


def xcom(airflow: Deployment, run_id: str, task_id: str) -> Any:
    rows = airflow.query(
        "SELECT value FROM xcom WHERE run_id = ? AND task_id = ? AND key = 'return_value'", run_id, task_id
    )
    return json.loads(rows[0][0]) if rows else None


def events(airflow: Deployment, run_id: str, task_id: str) -> list[str]:
    rows = airflow.query("SELECT event FROM log WHERE run_id = ? AND task_id = ? ORDER BY id", run_id, task_id)
    return [event for (event,) in rows]


def test_rotation_runs_unattended_and_nothing_leaks(deployment: Any) -> None:
    airflow, api = deployment
    airflow.wait_for(
        "the DAG processor to parse the example DAGs",
        lambda: len(airflow.query("SELECT dag_id FROM dag WHERE dag_id LIKE 'sfi_%'")) == 4,
        timeout=120,
    )
    airflow.cli("dags", "unpause", "sfi_token_rotation")

    # SQLite reuses the ids of deleted rows: key the triggers seen by id and creation time.
    triggers_seen: dict[tuple[int, str], tuple[str, Any, Any]] = {}

    def sample_triggers() -> None:
        for trigger_id, created, classpath, kwargs, triggerer_id in airflow.query(
            "SELECT id, created_date, classpath, kwargs, triggerer_id FROM trigger"
        ):
            if triggerer_id is not None:
                triggers_seen[trigger_id, created] = (classpath, airflow.trigger_kwargs(kwargs), triggerer_id)

    def rotations_done() -> list[str] | None:
        sample_triggers()
        done = airflow.query(
            "SELECT run_id FROM dag_run WHERE dag_id = 'sfi_token_rotation' AND state != 'running' ORDER BY id"
        )
        return [run_id for (run_id,) in done] if len(done) >= ROTATIONS else None

    started = time.monotonic()
    runs = airflow.wait_for(f"{ROTATIONS} rotations", rotations_done, timeout=ROTATIONS * 90, every=0.5)
    rotation_seconds = time.monotonic() - started
    calls_after_rotations = len(api.calls("ws/new"))
    airflow.cli("dags", "pause", "sfi_token_rotation")

    # Every finished run succeeded, each refresh got a new token, and the next run picked it up.
    states = dict(airflow.query("SELECT run_id, state FROM dag_run WHERE dag_id = 'sfi_token_rotation'"))
    assert [states[run_id] for run_id in runs[:ROTATIONS]] == ["success"] * ROTATIONS
    refreshed = [xcom(airflow, run_id, "refresh_token") for run_id in runs[:ROTATIONS]]
    assert all(token["is_new"] for token in refreshed)
    assert len({token["token"] for token in refreshed}) == ROTATIONS
    for previous, run_id in zip(refreshed, runs[1:ROTATIONS], strict=False):
        got = xcom(airflow, run_id, "get_token")
        assert (got["token"], got["is_new"]) == (previous["token"], False)

    # The waits were spent deferred, with the triggers running in the triggerer process. (refresh_token
    # defers too when it starts before the old token expires; on a loaded machine it may start after.)
    for run_id in runs[:ROTATIONS]:
        assert "deferred" in events(airflow, run_id, "wait_until_near_expiry")
    triggerer_jobs = {job_id for (job_id,) in airflow.query("SELECT id FROM job WHERE job_type = 'TriggererJob'")}
    assert triggers_seen, "no trigger was seen running"
    expected_kwargs = {
        "airflow.providers.standard.triggers.temporal.DateTimeTrigger": {"moment", "end_from_trigger"},
        "airflow_sfi.triggers.ws_token.SfiWsTokenExpiryTrigger": {
            "expires_at",
            "refresh_margin_seconds",
            "end_from_trigger",
        },
    }
    for classpath, kwargs, triggerer_id in triggers_seen.values():
        assert set(kwargs) == expected_kwargs[classpath]
        assert triggerer_id in triggerer_jobs
    # Per rotation: get_token, the refresh's first answer (the old token, if still active), the new
    # token; at most one more rotation was in flight.
    assert ROTATIONS * 2 <= calls_after_rotations <= (ROTATIONS + 1) * 3

    # Failing and waiting runs: a 429 "next hour", connection refused, a wrong key; and RapidAPI.
    airflow.cli("dags", "unpause", "sfi_direct_token")
    airflow.cli("dags", "unpause", "sfi_rapidapi_token")
    api.inject("rate_limit")
    airflow.cli("dags", "trigger", "sfi_direct_token", "--run-id", "limited")
    airflow.wait_for(
        "the rate-limited task to be rescheduled",
        lambda: task_states(airflow, "sfi_direct_token", "limited").get("get_token") == "up_for_reschedule",
        timeout=120,
    )
    for run_id, conn_id in (("refused", "sfi_refused"), ("badkey", "sfi_badkey")):
        airflow.cli(
            "dags", "trigger", "sfi_direct_token", "--run-id", run_id, "--conf", json.dumps({"sfi_conn_id": conn_id})
        )
    airflow.cli("dags", "trigger", "sfi_rapidapi_token", "--run-id", "rapid")
    airflow.cli("dags", "unpause", "sfi_token_wait_in_triggerer")
    airflow.cli("dags", "trigger", "sfi_token_wait_in_triggerer", "--run-id", "in_triggerer")

    def finished() -> dict[str, str] | None:
        sample_triggers()
        found = dict(
            airflow.query(
                "SELECT run_id, state FROM dag_run WHERE run_id IN ('refused', 'badkey', 'rapid', 'in_triggerer')"
            )
        )
        return found if len(found) == 4 and "running" not in found.values() and "queued" not in found.values() else None

    outcome = airflow.wait_for("the failing, RapidAPI and triggerer-only runs", finished, timeout=180, every=0.5)
    assert outcome == {"refused": "failed", "badkey": "failed", "rapid": "success", "in_triggerer": "success"}
    assert "up_for_reschedule" in events(airflow, "rapid", "wait_until_near_expiry")
    # start_from_trigger: the sensor went straight to the triggerer and ended there, never running in a worker.
    assert "running" not in events(airflow, "in_triggerer", "wait_until_near_expiry")
    assert task_states(airflow, "sfi_token_wait_in_triggerer", "in_triggerer") == dict.fromkeys(
        ("get_token", "wait_until_near_expiry"), "success"
    )
    started_in_triggerer = [t for t in triggers_seen.values() if t[1].get("end_from_trigger") is True]
    assert [(c, set(k)) for c, k, _ in started_in_triggerer] == [
        (
            "airflow_sfi.triggers.ws_token.SfiWsTokenExpiryTrigger",
            {"expires_at", "refresh_margin_seconds", "end_from_trigger"},
        )
    ]
    assert {c.auth_type for c in api.calls("ws/new") if c.key == "sandbox-key-ultra"} == {"rapidapi"}

    # No secret in any log file, process output, rendered template field or trigger.
    secrets = ["sandbox-key-pro", "sandbox-key-ultra", SECRET_REFUSED, SECRET_BAD, *api.issued_tokens]
    assert len(api.issued_tokens) >= ROTATIONS + 1
    files = list(airflow.log_files())
    text = {path: path.read_text(errors="replace") for path in files}
    task_logs = [path for path in files if path.suffix == ".log" and "task_id=" in str(path)]
    assert len(task_logs) >= ROTATIONS * 3
    everything = "\n".join(text.values())
    assert "connection refused" in everything and "Token is invalid" in everything  # the failures were logged
    assert "waiting until the rate limit resets" in everything
    leaks = {secret: [str(p) for p, t in text.items() if secret in t] for secret in secrets}
    assert {s: where for s, where in leaks.items() if where} == {}
    rendered = json.dumps(airflow.query("SELECT task_id, rendered_fields FROM rendered_task_instance_fields"))
    trigger_kwargs = json.dumps([kwargs for _, kwargs, _ in triggers_seen.values()], default=str)
    for secret in secrets:
        assert secret not in rendered and secret not in trigger_kwargs
    print(
        f"\n{ROTATIONS} rotations in {rotation_seconds:.0f} s (TTL {TTL} s, margin {MARGIN} s); "
        f"{calls_after_rotations} ws/new calls; {len(files)} log files searched for {len(secrets)} secrets"
    )
