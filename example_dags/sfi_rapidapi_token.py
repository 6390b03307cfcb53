"""
RapidAPI auth (key in the ``sfi_rapidapi`` connection, ``auth_type`` ``rapidapi``): get a token that
must grant MAIN and STATS, then wait in reschedule mode until it is due for refresh, reading the
expiry through a template.
"""

from __future__ import annotations

import datetime
import os

import pendulum
from airflow.sdk import DAG

from airflow_sfi.operators.ws_token import SfiWsTokenOperator
from airflow_sfi.sensors.ws_token import SfiWsTokenExpirySensor

RENEW_MARGIN = datetime.timedelta(seconds=float(os.environ.get("SFI_RENEW_MARGIN_SECONDS", "300")))

with DAG(
    dag_id="sfi_rapidapi_token",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["sfi"],
):
    get_token = SfiWsTokenOperator(task_id="get_token", sfi_conn_id="sfi_rapidapi", required_channels=["MAIN", "STATS"])
    wait_until_near_expiry = SfiWsTokenExpirySensor(
        task_id="wait_until_near_expiry",
        expires_at="{{ ti.xcom_pull(task_ids='get_token')['expires_at'] }}",
        renew_margin=RENEW_MARGIN,
        mode="reschedule",
    )
    get_token >> wait_until_near_expiry
