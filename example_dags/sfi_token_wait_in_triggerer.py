"""
Wait for the refresh time without ever taking a worker slot: the sensor starts in the triggerer
(``start_from_trigger``, Airflow 3.3+) and finishes there. The triggerer renders the templated
``expires_at``; an XComArg such as ``get_token.output`` would need a worker to resolve. In the
triggerer, ``xcom_pull`` needs ``map_indexes=-1``: without it Airflow asks for a slice of XComs,
which the triggerer does not serve (Airflow 3.3).
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
    dag_id="sfi_token_wait_in_triggerer",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["sfi"],
):
    get_token = SfiWsTokenOperator(task_id="get_token", required_channels=["MAIN"])
    wait_until_near_expiry = SfiWsTokenExpirySensor(
        task_id="wait_until_near_expiry",
        expires_at="{{ ti.xcom_pull(task_ids='get_token', map_indexes=-1)['expires_at'] }}",
        renew_margin=RENEW_MARGIN,
        start_from_trigger=True,
    )
    get_token >> wait_until_near_expiry
