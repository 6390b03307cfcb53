"""
Land each day's matches: every match of the day that just ended (``matches/day/basic``, all pages) as one
JSON Lines object, ``<landing>/matches_day/<YYYYMMDD>.jsonl``.

``landing`` is a DAG param (``SFI_LANDING_URL``, default ``file:///tmp/sfi_landing``): any object storage
URL, e.g. ``s3://my_aws_conn@bucket/sfi`` with the connection before the ``@``. A rerun replaces the day's
object, a failed run leaves the one before it, and a day that needs more calls than the hour has left waits
in the triggerer for the reset. Each landing updates the asset ``sfi_daily_matches``; its event's ``extra``
names the day's object (``path``, ``params``, ``items``): schedule a DAG on it to read each new day.
"""

from __future__ import annotations

import datetime
import os

import pendulum
from airflow.sdk import DAG, Asset, Param

from airflow_sfi.transfers.sfi_to_object_storage import SfiToObjectStorageOperator

LANDING = os.environ.get("SFI_LANDING_URL", "file:///tmp/sfi_landing")
# The day before the end of the run's data interval: the day that just ended (a manual run without a
# logical date counts from when it was triggered).
DAY = "{{ ((data_interval_end or dag_run.run_after) - macros.timedelta(days=1)) | ds_nodash }}"

daily_matches = Asset("sfi_daily_matches")

with DAG(
    dag_id="sfi_daily_matches",
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["sfi"],
    doc_md=__doc__,
    default_args={"retries": 2, "retry_delay": datetime.timedelta(minutes=5)},
    params={"landing": Param(LANDING, type="string", description="where the days land (an object storage URL)")},
):
    SfiToObjectStorageOperator(
        task_id="land_matches",
        endpoint="matches/day/basic",
        api_params={"d": DAY},
        destination="{{ params.landing }}/matches_day/" + DAY + ".jsonl",
        outlets=[daily_matches],
    )
