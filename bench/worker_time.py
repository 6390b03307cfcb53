"""Figure 4: how long the sensor held a worker slot while waiting W seconds, per mode, from a real run's records."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
TTL = 20


def main(wait: float = 12.0) -> dict[str, dict[str, float]]:
    home = tempfile.mkdtemp(prefix="sfi-bench-home-")
    os.environ.update(
        AIRFLOW_HOME=home,
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(BENCH / "dags"),
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
        SFI_BENCH_MARGIN_SECONDS=str(TTL - wait),
    )
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.log import Log
    from airflow.utils import db
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from airflow_sfi.sandbox import SandboxServer

    db.resetdb()
    bag = DagBag(dag_folder=str(BENCH / "dags"))
    results = {}
    for mode in ("poke", "reschedule", "deferrable"):
        with SandboxServer(ttl=TTL) as api:
            os.environ["AIRFLOW_CONN_SFI_DEFAULT"] = api.connection()
            run = bag.get_dag(f"sfi_bench_wait_{mode}").test()
        with create_session() as session:
            rows = session.execute(
                select(Log.event, Log.dttm).where(Log.run_id == run.run_id, Log.task_id == "wait").order_by(Log.id)
            ).all()
        held = sum(
            (rows[i + 1][1] - dttm).total_seconds() for i, (event, dttm) in enumerate(rows[:-1]) if event == "running"
        )
        total = (rows[-1][1] - rows[0][1]).total_seconds()
        results[mode] = {
            "wait_seconds": total,
            "worker_seconds": held,
            "worker_share": held / total,
            "events": [event for event, _ in rows],
        }
    return results


if __name__ == "__main__":
    print(json.dumps(main(*(float(a) for a in sys.argv[1:])), default=str))
