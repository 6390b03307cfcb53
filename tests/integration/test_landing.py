"""
The daily landing (``sfi_daily_matches``) in a real Airflow (dag.test(), SQLite) against the sandbox: idempotent
reruns, a failed run that keeps the day landed before, the rate limit waited out, and an S3 store.
"""

from __future__ import annotations

import datetime
import itertools
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pendulum
import pytest

from airflow_sfi.sandbox import SandboxServer
from airflow_sfi.transfers.sfi_to_object_storage import SfiToObjectStorageOperator
from airflow_sfi.version_compat import AIRFLOW_V_3_1_PLUS, AIRFLOW_V_3_2_PLUS
from tests.helpers import REPO, fail_request

DAGS = REPO / "example_dags"
DAY = "20250301"
# The run whose data interval ends the day after DAY: the DAG lands DAY.
LOGICAL_DATE = pendulum.datetime(2025, 3, 2, tz="UTC")


@pytest.fixture(scope="module", autouse=True)
def airflow_db() -> Iterator[None]:
    from airflow.utils import db

    db.resetdb()
    yield


def land(landing: str, *, retries: int | None = None) -> tuple[Any, Any]:
    """Run ``sfi_daily_matches`` for DAY with the ``landing`` param; return the run and its task instance."""
    if AIRFLOW_V_3_2_PLUS:
        from airflow.dag_processing.dagbag import DagBag
    else:
        from airflow.models.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / "sfi_daily_matches.py"))
    if not AIRFLOW_V_3_1_PLUS:
        # 3.0's dag.test() does not store the DAG, so its outlet asset is never activated, and the task would
        # fail on an inactive asset: store it as the DAG processor does.
        from airflow.dag_processing.bundles.manager import DagBundlesManager

        DagBundlesManager().sync_bundles_to_db()
        bag.sync_to_db("dags-folder", None)
    dag = bag.get_dag("sfi_daily_matches")
    if retries is not None:
        dag.get_task("land_matches").retries = retries
    run = dag.test(logical_date=LOGICAL_DATE, run_conf={"landing": landing})
    (ti,) = run.get_task_instances()
    return run, ti


def files(root: Path) -> dict[str, bytes]:
    """Every file under ``root``, hidden ones too, by relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def ids(data: bytes) -> list[str]:
    return [json.loads(line)["id"] for line in data.decode().splitlines()]


def asset_extras(run_id: str) -> list[dict[str, Any]]:
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return [dict(e) for e in session.scalars(select(AssetEvent.extra).where(AssetEvent.source_run_id == run_id))]


def task_events(run_id: str) -> list[str]:
    from airflow.models.log import Log
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return list(session.scalars(select(Log.event).where(Log.run_id == run_id).order_by(Log.id)))


# 3 scripted matches and 60 generated ones on DAY, 10 a page: 7 pages.
@pytest.mark.sfi_sandbox(match_day=DAY, extra_matches=60, per_page=10)
def test_a_rerun_replaces_the_day_and_a_failed_run_keeps_it(sfi_sandbox: SandboxServer, tmp_path: Path) -> None:
    landing = f"file://{tmp_path}"
    run, ti = land(landing)
    assert run.state == "success"
    path = f"{landing}/matches_day/{DAY}.jsonl"
    assert ti.xcom_pull(task_ids="land_matches") == {"path": path, "items": 63, "pages": 7}
    first = files(tmp_path)
    assert list(first) == [f"matches_day/{DAY}.jsonl"]  # no staging, no temporary object left
    landed = ids(first[f"matches_day/{DAY}.jsonl"])
    assert len(landed) == 63 == len(set(landed))
    (extra,) = asset_extras(run.run_id)
    assert extra == {
        "path": path,
        "partition": path,  # the landing's folder is a param: no literal base to name the partition under
        "endpoint": "matches/day/basic",
        "params": {"d": DAY},
        "items": 63,
        "pages": 7,
    }

    # Run again: the same object, replaced whole.
    run, _ = land(landing)
    assert run.state == "success"
    assert files(tmp_path) == first

    # A run whose 4th page comes back malformed fails, and the day landed before stays as it was.
    fail_request(sfi_sandbox, 4)
    run, ti = land(landing, retries=0)
    assert run.state == "failed"
    assert files(tmp_path) == first
    assert [c.fault for c in sfi_sandbox.calls()[-4:]] == [None, None, None, "malformed"]
    assert len(sfi_sandbox.calls()) == 7 + 7 + 4
    assert asset_extras(run.run_id) == []


# 200 matches, one a page: 200 pages against a quota of 50 calls per 1-second window.
@pytest.mark.sfi_sandbox(match_day=DAY, extra_matches=197, per_page=1, rate_limit=50, rate_window=1)
def test_the_rate_limit_is_waited_out_without_a_refused_call(
    sfi_sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sandbox and the task share a clock: no skew to allow for past the reset it announces.
    monkeypatch.setattr(SfiToObjectStorageOperator, "reset_grace", datetime.timedelta(0))
    run, ti = land(f"file://{tmp_path}")
    assert run.state == "success"
    assert ti.xcom_pull(task_ids="land_matches")["pages"] == 200
    calls = sfi_sandbox.calls()
    assert [c.status for c in calls] == [200] * 200  # not one 429
    # Each wait covered the whole reset: every call after a full window came after that window's end.
    starts = [calls[i].at for i in range(0, 200, 50)]
    assert all(b - a >= 1 for a, b in itertools.pairwise(starts))
    if AIRFLOW_V_3_2_PLUS:
        assert task_events(run.run_id).count("deferred") == 3
    landed = ids((tmp_path / "matches_day" / f"{DAY}.jsonl").read_bytes())
    assert len(landed) == 200 == len(set(landed))


def test_the_landing_page_copies_the_example_dag() -> None:
    source = (DAGS / "sfi_daily_matches.py").read_text().strip()
    page = (REPO / "docs" / "landing.md").read_text()
    assert f"```python\n# example_dags/sfi_daily_matches.py\n{source}\n```" in page, "copy the DAG into docs/landing.md"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def s3_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], Any]]:
    """moto's S3 server on loopback, a bucket in it, and the ``aws`` connection ``aws_sfi_test`` to reach it."""
    reason = "the S3 test needs the s3-test dependency group (make venv installs it into .venv)"
    pytest.importorskip("airflow.providers.amazon", reason=reason)
    pytest.importorskip("s3fs", reason=reason)
    pytest.importorskip("moto.server", reason=reason)
    import boto3

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.1)
        keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
        client = boto3.client("s3", endpoint_url=endpoint, **keys)
        client.create_bucket(Bucket="sfi-landing")
        monkeypatch.setenv(
            "AIRFLOW_CONN_AWS_SFI_TEST",
            json.dumps(
                {
                    "conn_type": "aws",
                    "login": "testing",
                    "password": "testing",
                    "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
                }
            ),
        )
        yield lambda: client
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.sfi_sandbox(match_day=DAY, extra_matches=60, per_page=10)
def test_a_day_lands_in_s3_through_the_users_connection(
    sfi_sandbox: SandboxServer, s3_server: Callable[[], Any]
) -> None:
    run, ti = land("s3://aws_sfi_test@sfi-landing/sfi")
    assert run.state == "success"
    assert ti.xcom_pull(task_ids="land_matches") == {
        "path": f"s3://aws_sfi_test@sfi-landing/sfi/matches_day/{DAY}.jsonl",
        "items": 63,
        "pages": 7,
    }
    client = s3_server()
    listed = client.list_objects_v2(Bucket="sfi-landing")
    assert [o["Key"] for o in listed["Contents"]] == [f"sfi/matches_day/{DAY}.jsonl"]  # the staging is gone
    body = client.get_object(Bucket="sfi-landing", Key=f"sfi/matches_day/{DAY}.jsonl")["Body"].read()
    assert len(ids(body)) == 63 == len(set(ids(body)))
