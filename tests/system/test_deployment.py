"""
The provider in a running Airflow: scheduler with LocalExecutor, DAG processor, triggerer and API
server as separate processes, against the sandbox API on loopback. Run by `make test-deployment`.
"""

from __future__ import annotations

import datetime
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_sfi.sandbox import GapWatcher, SandboxServer
from tests.helpers import REPO, when_subscribed
from tests.system.deployment import Deployment

pytestmark = pytest.mark.deployment

EXAMPLE_DAGS = len(list((REPO / "example_dags").glob("sfi_*.py")))

TTL = 20
MARGIN = 8
LIFETIMES = 3  # per ws/renew mode
YESTERDAY = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)).strftime("%Y%m%d")
LANDED_MATCHES = 60  # three scripted and the rest generated: three pages of 25 on PRO
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
    # The daily landing's day: the one that just ended, with enough matches for several pages.
    with SandboxServer(ttl=TTL, match_day=YESTERDAY, extra_matches=LANDED_MATCHES - 3) as api:
        env = {
            "SFI_RENEW_MARGIN_SECONDS": str(MARGIN),
            "SFI_LANDING_URL": f"file://{home.parent / 'landing'}",
            "AIRFLOW_CONN_SFI_DEFAULT": api.connection("sandbox-key-pro"),
            "AIRFLOW_CONN_SFI_RAPIDAPI": api.connection("sandbox-key-ultra", "rapidapi"),
            "AIRFLOW_CONN_SFI_BADKEY": api.connection(SECRET_BAD),
            "AIRFLOW_CONN_SFI_REFUSED": connection(
                host=f"http://127.0.0.1:{closed_port()}", password=SECRET_REFUSED, extra={"max_attempts": 2}
            ),
        }
        with Deployment(home, env) as airflow:
            yield airflow, api


def parsed(airflow: Deployment) -> None:
    airflow.wait_for(
        "the DAG processor to parse the example DAGs",
        lambda: len(airflow.query("SELECT dag_id FROM dag WHERE dag_id LIKE 'sfi_%'")) == EXAMPLE_DAGS,
        timeout=120,
    )


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
    parsed(airflow)
    # SQLite reuses the ids of deleted rows: key the triggers seen by id and creation time.
    triggers_seen: dict[tuple[int, str], tuple[str, Any, Any]] = {}

    def sample_triggers() -> None:
        for trigger_id, created, classpath, kwargs, triggerer_id in airflow.query(
            "SELECT id, created_date, classpath, kwargs, triggerer_id FROM trigger"
        ):
            if triggerer_id is not None:
                triggers_seen[trigger_id, created] = (classpath, airflow.trigger_kwargs(kwargs), triggerer_id)

    def refreshes_done(at_least: int) -> Any:
        def probe() -> int | None:
            sample_triggers()
            (done,) = airflow.query(
                "SELECT count(*) FROM task_instance WHERE dag_id = 'sfi_token_rotation' "
                "AND task_id = 'refresh_token' AND state = 'success'"
            )[0]
            return done if done >= at_least else None

        return probe

    # Phase 1, ws/renew available: the token is renewed before it expires, and carried from run to run.
    airflow.cli("dags", "unpause", "sfi_token_rotation")
    started = time.monotonic()
    with GapWatcher(api.sandbox, airflow.published_token, every=0.1) as renewing:
        refreshed = airflow.wait_for(
            f"{LIFETIMES} refreshes with renew", refreshes_done(LIFETIMES), timeout=LIFETIMES * 60 + 120, every=0.5
        )
        calls_renewing = len(api.calls())
    lifetimes_renewing = refreshed + 1  # the first token's validity, then one per refresh
    # Phase 2, ws/renew absent: each refresh waits out the token and gets a new one.
    api.sandbox.renew = "absent"
    with GapWatcher(api.sandbox, airflow.published_token, every=0.1) as replacing:
        more = airflow.wait_for(
            f"{LIFETIMES} refreshes without renew",
            refreshes_done(refreshed + LIFETIMES),
            timeout=LIFETIMES * (TTL + 40) + 60,
            every=0.5,
        )
        calls_replacing = len(api.calls()) - calls_renewing
    lifetimes_replacing = more - refreshed
    rotation_seconds = time.monotonic() - started
    airflow.cli("dags", "pause", "sfi_token_rotation")

    failed = airflow.query(
        "SELECT task_id, state, try_number FROM task_instance WHERE dag_id = 'sfi_token_rotation' "
        "AND (state IN ('failed', 'upstream_failed', 'up_for_retry') OR try_number > 1)"
    )
    assert failed == []
    renewals = [c for c in api.calls() if c.path.endswith("/ws/renew/")]
    assert {c.status for c in renewals[:LIFETIMES]} == {200}
    assert renewing.total_gap == 0.0, f"{renewing.total_gap:.2f} s without a valid token while renewing"
    assert calls_renewing / lifetimes_renewing <= 1.5
    assert replacing.longest_gap <= 3.0
    assert calls_replacing / lifetimes_replacing <= 2.5
    assert len(api.tokens()) >= LIFETIMES + 1  # phase 2 replaced the token each lifetime

    # The refresh ran in the triggerer (kwargs: a connection id and times, no token) and ended the task there.
    triggerer_jobs = {job_id for (job_id,) in airflow.query("SELECT id FROM job WHERE job_type = 'TriggererJob'")}
    refresh_triggers = [t for t in triggers_seen.values() if t[0].endswith("SfiWsTokenRefreshTrigger")]
    assert refresh_triggers, "no refresh trigger was seen running"
    for _, kwargs, triggerer_id in refresh_triggers:
        assert triggerer_id in triggerer_jobs
        assert set(kwargs) == {
            "sfi_conn_id",
            "expires_at",
            "renew_margin",
            "action",
            "required_channels",
            "variable_key",
        }
    figures = (
        f"renew available: {lifetimes_renewing} lifetimes, {calls_renewing} calls "
        f"({calls_renewing / lifetimes_renewing:.2f} per lifetime), {renewing.total_gap:.2f} s without a valid token; "
        f"renew absent: {lifetimes_replacing} lifetimes, {calls_replacing} calls "
        f"({calls_replacing / lifetimes_replacing:.2f} per lifetime), longest gap {replacing.longest_gap:.2f} s, "
        f"total {replacing.total_gap:.2f} s; {rotation_seconds:.0f} s"
    )
    api.sandbox.renew = "extend"

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
            {"expires_at", "renew_margin", "end_from_trigger"},
        )
    ]
    assert {c.auth_type for c in api.calls("ws/new") if c.key == "sandbox-key-ultra"} == {"rapidapi"}

    # No secret in any log file, process output, rendered template field or trigger.
    secrets = ["sandbox-key-pro", "sandbox-key-ultra", SECRET_REFUSED, SECRET_BAD, *api.issued_tokens]
    files = list(airflow.log_files())
    text = {path: path.read_text(errors="replace") for path in files}
    task_logs = [path for path in files if path.suffix == ".log" and "task_id=" in str(path)]
    assert len(task_logs) >= LIFETIMES * 2
    everything = "\n".join(text.values())
    assert "connection refused" in everything and "Token is invalid" in everything  # the failures were logged
    assert "waiting until the rate limit resets" in everything
    leaks = {secret: [str(p) for p, t in text.items() if secret in t] for secret in secrets}
    assert {s: where for s, where in leaks.items() if where} == {}
    rendered = json.dumps(airflow.query("SELECT task_id, rendered_fields FROM rendered_task_instance_fields"))
    trigger_kwargs = json.dumps([kwargs for _, kwargs, _ in triggers_seen.values()], default=str)
    for secret in secrets:
        assert secret not in rendered and secret not in trigger_kwargs
    print(f"\nRotation (TTL {TTL} s, margin {MARGIN} s): {figures}")
    print(f"{len(files)} log files, the trigger kwargs and the rendered fields searched for {len(secrets)} secrets")


def test_the_daily_landing_runs_on_schedule_and_lands_the_day_once(deployment: Any) -> None:
    airflow, api = deployment
    parsed(airflow)
    airflow.cli("dags", "unpause", "sfi_daily_matches")  # catchup is off: the day that just ended runs
    airflow.wait_for(
        "the daily landing to succeed",
        lambda: airflow.query(
            "SELECT state FROM dag_run WHERE dag_id = 'sfi_daily_matches' AND state IN ('success', 'failed')"
        ),
        timeout=180,
    )
    (state,) = airflow.query("SELECT state FROM dag_run WHERE dag_id = 'sfi_daily_matches'")[0]
    assert state == "success"
    landed = airflow.home.parent / "landing" / "matches_day" / f"{YESTERDAY}.jsonl"
    matches = [json.loads(line) for line in landed.read_text().splitlines()]
    assert len(matches) == len({m["id"] for m in matches}) == LANDED_MATCHES
    assert len(api.calls("matches/day/basic")) == 3  # one call per page
    events = airflow.query(
        "SELECT ae.extra FROM asset_event ae JOIN asset a ON a.id = ae.asset_id WHERE a.name = ?", "sfi_daily_matches"
    )
    assert len(events) == 1 and str(landed) in events[0][0]
    for path in airflow.log_files():
        text = path.read_text(errors="replace")
        assert "sandbox-key-pro" not in text, path


def test_the_match_pipeline_lands_the_final_record_after_full_time(deployment: Any) -> None:
    from airflow_sfi.sandbox import default_matches

    airflow, api = deployment
    match = default_matches()[0]  # the DAG's default match_id
    when_subscribed(api, f"MAIN:match:{match.match_id}", lambda: api.play([match], minute_seconds=0.01), 180)
    parsed(airflow)
    airflow.cli("dags", "unpause", "sfi_match_pipeline")
    airflow.cli("dags", "trigger", "sfi_match_pipeline", "--run-id", "pipeline")
    airflow.wait_for(
        "the match pipeline to end",
        lambda: airflow.query("SELECT state FROM dag_run WHERE run_id = 'pipeline' AND state IN ('success', 'failed')"),
        timeout=240,
    )
    assert set(task_states(airflow, "sfi_match_pipeline", "pipeline").values()) == {"success"}
    landed = json.loads((airflow.home.parent / "landing" / "matches" / f"{match.match_id}.json").read_text())
    assert (landed["id"], landed["status"]) == (match.match_id, "ENDED")
    assert [e["team"] for e in landed["events"] if e["type"] == "goal"] == ["A", "B", "A", "A", "B"]
    for path in airflow.log_files():
        text = path.read_text(errors="replace")
        assert "sandbox-key-pro" not in text and not any(token in text for token in api.issued_tokens), path
