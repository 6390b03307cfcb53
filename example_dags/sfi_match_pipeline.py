"""
Process a match once it is over: wait in the triggerer for its ``match_end`` on the live feed, then
work on the final event; and land the match's final record once the REST API has it.

Trigger it with the match id, e.g. ``airflow dags trigger sfi_match_pipeline -c
'{"match_id": "d2a1e6f4b3c50001"}'`` (a sandbox match). The event sensor holds no worker slot while
the match plays; it gives up after ``timeout`` (3 hours). The REST record can lag the feed's
``match_end``: ``SfiMatchStatusSensor`` polls ``matches/view/basic`` from the triggerer until it says
``ENDED``, and ``land_record`` writes the record as JSON under the ``landing`` param
(``SFI_LANDING_URL``, default ``file:///tmp/sfi_landing``), at ``matches/<match_id>.json``.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
from typing import Any

import pendulum
from airflow.sdk import DAG, ObjectStoragePath, Param, task

from airflow_sfi.sensors.match_event import SfiMatchEventSensor
from airflow_sfi.sensors.match_status import SfiMatchStatusSensor

log = logging.getLogger(__name__)

LANDING = os.environ.get("SFI_LANDING_URL", "file:///tmp/sfi_landing")

with DAG(
    dag_id="sfi_match_pipeline",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["sfi"],
    doc_md=__doc__,
    params={
        "match_id": Param("d2a1e6f4b3c50001", type="string", pattern="^[A-Za-z0-9_-]{1,64}$"),
        "landing": Param(LANDING, type="string", description="where match records land (an object storage URL)"),
    },
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
        log.info("Match %s ended: %s", summary["match_id"], summary["score"])
        return summary

    process_match(match_end.output)

    final_record = SfiMatchStatusSensor(
        task_id="wait_for_final_record",
        match_id="{{ params.match_id }}",
        status="ENDED",
        poll_interval=60,
        timeout=datetime.timedelta(hours=1).total_seconds(),
    )

    @task
    def land_record(match_id: str, landing: str) -> str:
        """The match's final record, as the API has it now (events, scores), landed as JSON; its URL."""
        from airflow_sfi.hooks.sfi import SfiHook

        record = SfiHook().match(match_id)  # matches/view/basic
        path = ObjectStoragePath(landing) / "matches" / f"{match_id}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2, sort_keys=True))
        log.info("Landed match %s (%s) at %s", match_id, record.get("status"), path)
        return str(path)

    match_end >> final_record >> land_record("{{ params.match_id }}", "{{ params.landing }}")
