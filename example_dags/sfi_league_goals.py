"""
Every goal of one league, as it happens: an ``AssetWatcher`` on the live feed updates an asset, and
the asset schedules this DAG. One DAG per thing to follow: a triggerer's watchers share one WebSocket.

The watcher (``SfiMatchEventTrigger``) fires once per goal, and after a gap in the feed fetches what it
missed through REST; each asset event's ``extra["payload"]`` is the goal, with a dedupe ``key``. Airflow
may start one run for several goals, so the task reads ``triggering_asset_events`` as a batch:
``match_events`` returns its goals once each, oldest first, without the watcher's flush markers.
Set ``SFI_LEAGUE_ID`` to the league to follow (the default is one of the sandbox's).
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_sfi.protocol.messages import match_events
from airflow_sfi.triggers.match_event import SfiMatchEventTrigger

LEAGUE_ID = os.environ.get("SFI_LEAGUE_ID", "e8f1c2d3a4b50001")

league_goals = Asset(
    "sfi_league_goals",
    watchers=[
        AssetWatcher(
            name="sfi_league_goals_watcher",
            trigger=SfiMatchEventTrigger(
                sfi_conn_id="sfi_default", channel="MAIN", scope="league", scope_id=LEAGUE_ID, event_types=["goal"]
            ),
        )
    ],
)

with DAG(
    dag_id="sfi_league_goals",
    schedule=[league_goals],
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["sfi"],
    doc_md=__doc__,
):

    @task
    def record_goals(**context: Any) -> list[dict[str, Any]]:
        """Each goal of this run's batch, once, oldest first."""
        goals = match_events(context["triggering_asset_events"][league_goals])
        for goal in goals:
            data = goal["data"]
            print(f"Goal in match {goal['match_id']}, minute {data.get('minute')}: {data.get('score')}")
        return goals

    record_goals()
