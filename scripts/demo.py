"""
``make demo``: run the rotation DAG in a real Airflow (``dag.test()``, SQLite metadata DB) and
print what happened, with every token shown only as a fingerprint.

Against the sandbox API by default (token TTL 20 s, refresh 5 s before expiry: about half a minute).
With ``SFI_API_TOKEN`` set (and ``SFI_AUTH_TYPE=rapidapi`` for a RapidAPI key) it runs against the
real API instead, with the vendor's timings: about 25 minutes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
HOME = REPO / ".demo" / "airflow"
SANDBOX_TTL = 20
SANDBOX_MARGIN = 5


def fingerprint(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:10]


def main() -> int:
    shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir(parents=True)
    os.environ.update(
        AIRFLOW_HOME=str(HOME),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "example_dags"),
        AIRFLOW__LOGGING__LOGGING_LEVEL=os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING"),
    )
    # Quiet the noise a fresh Airflow prints that says nothing about this provider.
    warnings.filterwarnings("ignore", message="Using `httpx`")
    from cryptography.fernet import Fernet

    os.environ.setdefault("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())
    from airflow_sfi.sandbox import SandboxServer

    api_token = os.environ.get("SFI_API_TOKEN", "").strip()
    sandbox = None
    if api_token:
        auth_type = os.environ.get("SFI_AUTH_TYPE", "direct")
        conn: dict[str, Any] = {"conn_type": "sfi", "password": api_token, "extra": {"auth_type": auth_type}}
        where = f"the real API ({auth_type}); this takes about 25 minutes"
    else:
        sandbox = SandboxServer(ttl=SANDBOX_TTL).start()
        conn = json.loads(sandbox.connection("sandbox-key-pro"))
        os.environ.setdefault("SFI_RENEW_MARGIN_SECONDS", str(SANDBOX_MARGIN))
        where = f"the sandbox API at {sandbox.url} (token TTL {SANDBOX_TTL} s)"
    os.environ["AIRFLOW_CONN_SFI_DEFAULT"] = json.dumps(conn)
    margin = float(os.environ.get("SFI_RENEW_MARGIN_SECONDS", "300"))
    print(f"Running DAG sfi_token_rotation against {where}, refreshing {margin:g} s before expiry...", flush=True)

    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils import db

    db.resetdb()
    dag = DagBag(dag_folder=str(REPO / "example_dags")).get_dag("sfi_token_rotation")
    if dag is None:
        print("sfi_token_rotation did not load from example_dags/", file=sys.stderr)
        return 1
    started = time.monotonic()
    run = dag.test()
    elapsed = time.monotonic() - started
    try:
        return report(run, elapsed, sandbox)
    finally:
        if sandbox is not None:
            sandbox.stop()


def report(run: Any, elapsed: float, sandbox: Any) -> int:
    from airflow.models.log import Log
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        deferred = set(
            session.scalars(select(Log.task_id).where(Log.run_id == run.run_id, Log.event == "deferred")).all()
        )
    tis = {ti.task_id: ti for ti in sorted(run.get_task_instances(), key=lambda ti: ti.start_date)}
    print(f"\nRun {run.run_id}: {run.state} in {elapsed:.1f} s")
    first = tis["get_token"].xcom_pull(task_ids="get_token")
    refreshed = tis["refresh_token"].xcom_pull(task_ids="refresh_token")
    for task_id, ti in tis.items():
        seconds = (ti.end_date - ti.start_date).total_seconds() if ti.end_date and ti.start_date else 0.0
        how = "deferred, " if task_id in deferred else ""
        print(f"  {task_id:24} {ti.state!s:8} {how}{seconds:.1f} s")
    if not first or not refreshed:
        print("No token was returned.")
        return 1
    for label, token in (("token in hand", first), ("after refresh", refreshed)):
        print(
            f"  {label:16} {fingerprint(token['token'])} ({'new' if token['is_new'] else 'reused'}), "
            f"channels {', '.join(token['allowed_channels'])}, expires {token['expires_at']}"
        )
    extended = refreshed["expires_at"] > first["expires_at"]
    same = first["token"] == refreshed["token"]
    print(
        f"  The refresh {'renewed the same token' if same else 'replaced the token'}"
        f"{', moving its expiry later' if extended else ', but the expiry did not move'}."
    )
    if sandbox is not None:
        calls = [f"{c.path} {c.status}" for c in sandbox.calls()]
        print(f"  The sandbox answered {len(calls)} calls: {', '.join(calls)}")
    return 0 if run.state == "success" and extended else 1


if __name__ == "__main__":
    sys.exit(main())
