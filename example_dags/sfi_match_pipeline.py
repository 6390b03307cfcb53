"""
Process a match once it is over: wait in the triggerer for its ``match_end`` on the live feed, then
work on the final event.

Trigger it with the match id, e.g. ``airflow dags trigger sfi_match_pipeline -c
'{"match_id": "d2a1e6f4b3c50001"}'`` (a sandbox match). The sensor holds no worker slot while
the match plays; it gives up after ``timeout`` (3 hours).
"""

from __future__ import annotations

import datetime
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_sfi.sensors.match_event import SfiMatchEventSensor

with DAG(
    dag_id="sfi_match_pipeline",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["sfi"],
    doc_md=__doc__,
    params={"match_id": Param("d2a1e6f4b3c50001", type="string", pattern="^[A-Za-z0-9_-]{1,64}$")},
):
    match_end = SfiMatchEventSensor(
        task_id="wait_for_match_end",
        match_id="{{ params.match_id }}",
        event_types="match_end",
        timeout=datetime.timedelta(hours=3).total_seconds(),
    )

    @task
    def process_match(final: dict[str, Any]) -> dict[str, Any]:
        """Whatever the pipeline does with a finished match; here, its result."""
        data = final["data"]
        summary = {"match_id": final["match_id"], "minute": data.get("minute"), "score": data.get("score")}
        print(f"Match {summary['match_id']} ended: {summary['score']}")
        return summary

    process_match(match_end.output)
