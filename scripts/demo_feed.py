"""
``make demo-feed``: live match events driving DAG runs in a running Airflow, against the sandbox.

Starts the sandbox (REST API and WebSocket) and a whole Airflow on this machine (API server,
scheduler with LocalExecutor, DAG processor, triggerer; SQLite in ``.demo/feed``), unpauses
``sfi_league_goals`` (an ``AssetWatcher`` on the league's goals) and triggers ``sfi_match_pipeline``
for one match, then plays that match on the WebSocket and prints each goal as it is sent and each
DAG run that it started, with the goals its batch held. About two minutes.

``--keep``: then keep Airflow and the sandbox running, printing the UI's address, until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

HOME = REPO / ".demo" / "feed" / "airflow"
MINUTE_SECONDS = 0.4  # a 90-minute match in 36 s


def goal_runs(airflow: Any) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """Each finished ``record_goals`` task: run id -> (its start, the goals it returned)."""
    rows = airflow.query(
        "SELECT ti.run_id, ti.start_date, x.value FROM task_instance ti JOIN xcom x "
        "ON x.run_id = ti.run_id AND x.task_id = ti.task_id AND x.key = 'return_value' "
        "WHERE ti.dag_id = 'sfi_league_goals' AND ti.task_id = 'record_goals' AND ti.state = 'success'"
    )
    return {run_id: (start, json.loads(value)) for run_id, start, value in rows}


def main(keep: bool = False) -> int:
    from airflow_sfi.sandbox import SandboxServer, default_matches
    from tests.system.deployment import Deployment

    match = default_matches()[0]
    shutil.rmtree(HOME.parent, ignore_errors=True)
    HOME.parent.mkdir(parents=True)
    with SandboxServer(ttl=30) as api:
        env = {"AIRFLOW_CONN_SFI_DEFAULT": api.connection("sandbox-key-pro"), "SFI_LEAGUE_ID": match.league_id}
        print(f"Sandbox API on {api.url}, WebSocket on {api.ws_url} (token TTL 30 s). Starting Airflow...", flush=True)
        with Deployment(HOME, env) as airflow:
            airflow.wait_for(
                "the example DAGs to be parsed",
                lambda: airflow.query("SELECT 1 FROM dag WHERE dag_id = 'sfi_league_goals'"),
                timeout=180,
            )
            airflow.cli("dags", "unpause", "sfi_league_goals")
            airflow.cli("dags", "unpause", "sfi_match_pipeline")
            airflow.cli(
                "dags",
                "trigger",
                "sfi_match_pipeline",
                "--run-id",
                "demo",
                "--conf",
                json.dumps({"match_id": match.match_id}),
            )
            topics = (f"MAIN:league:{match.league_id}", f"MAIN:match:{match.match_id}")
            airflow.wait_for(
                "the watcher and the sensor to subscribe",
                lambda: all(
                    any(t in c.subscriptions and c.closed_at is None for c in api.ws_connections()) for t in topics
                ),
                timeout=180,
            )
            print(f"Subscribed: {', '.join(topics)}. Playing match {match.match_id}...\n", flush=True)
            playback = api.play([match], minute_seconds=MINUTE_SECONDS)
            goals_sent = 0
            shown: set[str] = set()
            deadline = time.monotonic() + 90 * MINUTE_SECONDS + 120
            while time.monotonic() < deadline:
                goals = [e for e in api.emitted() if e.message["type"] == "goal"]
                for sent in goals[goals_sent:]:
                    data = sent.message["data"]
                    print(f"  sent   goal, minute {data['minute']}: {data['score']}", flush=True)
                goals_sent = len(goals)
                for run_id, (_, batch) in sorted(goal_runs(airflow).items(), key=lambda item: item[1][0]):
                    if run_id not in shown:
                        shown.add(run_id)
                        scores = ", ".join(f"{g['data']['minute']}' {g['data']['score']}" for g in batch)
                        print(f"  run    {run_id}: {len(batch)} goal(s): {scores}", flush=True)
                received = sum(len(batch) for _, batch in goal_runs(airflow).values())
                pipeline = airflow.query("SELECT state FROM dag_run WHERE run_id = 'demo'")
                if playback.done and received >= goals_sent and pipeline and pipeline[0][0] != "running":
                    break
                time.sleep(0.5)
            status = report(airflow, api, goals_sent)
            if keep:
                keep_running(airflow)
            return status


def keep_running(airflow: Any) -> None:
    """Wait for Ctrl-C or SIGTERM, for a look at the UI; the caller's context managers then tear down."""
    url = f"http://{airflow.env['AIRFLOW__API__HOST']}:{airflow.env['AIRFLOW__API__PORT']}/"
    print(f"\nAirflow UI: {url} (no login: every user is an admin). Ctrl-C or SIGTERM to stop.", flush=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)
    print("Stopping Airflow and the sandbox...", flush=True)


def report(airflow: Any, api: Any, goals_sent: int) -> int:
    import datetime

    runs = goal_runs(airflow)
    keys = [g["key"] for _, batch in runs.values() for g in batch]
    sent_at = {
        json.dumps(e.message["data"], sort_keys=True): e.at for e in api.emitted() if e.message["type"] == "goal"
    }
    delays = [
        datetime.datetime.fromisoformat(start).timestamp() - sent_at[json.dumps(g["data"], sort_keys=True)]
        for start, batch in runs.values()
        for g in batch
    ]
    (state,) = airflow.query("SELECT state FROM dag_run WHERE run_id = 'demo'")[0]
    summary = airflow.query(
        "SELECT value FROM xcom WHERE run_id = 'demo' AND task_id = 'process_match' AND key = 'return_value'"
    )
    print(f"\n{goals_sent} goals sent, {len(keys)} reached a DAG run ({len(set(keys))} distinct) in {len(runs)} runs.")
    if delays:
        print(f"Goal sent -> record_goals started: median {statistics.median(delays):.1f} s, max {max(delays):.1f} s.")
    print(f"sfi_match_pipeline: {state}; process_match returned {json.loads(summary[0][0]) if summary else None}")
    ok = len(keys) == len(set(keys)) == goals_sent and state == "success"
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep Airflow and the sandbox running until Ctrl-C")
    sys.exit(main(keep=parser.parse_args().keep))
