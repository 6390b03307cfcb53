"""
Every goal of one league, as it happens: an ``AssetWatcher`` on the live feed updates an asset, which
schedules this DAG. One DAG per thing to follow: a triggerer's watchers share one WebSocket.

Each asset event's ``extra["payload"]`` is a goal with a dedupe ``key`` (fetched through REST after a gap
in the feed). One run may hold several goals: ``match_events`` returns them once each, oldest first,
without the watcher's flush markers. ``SFI_LEAGUE_ID`` sets the league (default: one of the sandbox's).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_sfi.protocol.messages import match_events
from airflow_sfi.triggers.match_event import SfiMatchEventTrigger

log = logging.getLogger(__name__)

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
            log.info("Goal in match %s, minute %s: %s", goal["match_id"], data.get("minute"), data.get("score"))
        return goals

    record_goals()
