"""
Keep a WebSocket token valid, forever: get it, wait until it is close to expiry, refresh it.

``@continuous`` with ``max_active_runs=1`` starts the next run as soon as one ends, so there is
always exactly one rotation in flight. The sensor waits in the triggerer (deferrable), holding no
worker slot. The API returns the active token again until it expires, so ``refresh_token`` has a
``min_validity``: it waits out the old token (again deferred) and returns a new one.

``SFI_REFRESH_MARGIN_SECONDS`` (default 300, the vendor's advice) sets how long before expiry to refresh.
"""

from __future__ import annotations

import datetime
import os

import pendulum
from airflow.sdk import DAG

from airflow_sfi.operators.ws_token import SfiWsTokenOperator
from airflow_sfi.sensors.ws_token import SfiWsTokenExpirySensor

REFRESH_MARGIN = datetime.timedelta(seconds=float(os.environ.get("SFI_REFRESH_MARGIN_SECONDS", "300")))

with DAG(
    dag_id="sfi_token_rotation",
    schedule="@continuous",
    max_active_runs=1,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["sfi"],
    doc_md=__doc__,
):
    get_token = SfiWsTokenOperator(task_id="get_token", required_channels=["MAIN"])
    wait_until_near_expiry = SfiWsTokenExpirySensor(
        task_id="wait_until_near_expiry",
        expires_at=get_token.output["expires_at"],
        refresh_margin=REFRESH_MARGIN,
        deferrable=True,
    )
    refresh_token = SfiWsTokenOperator(
        task_id="refresh_token",
        required_channels=["MAIN"],
        min_validity=2 * REFRESH_MARGIN,
        deferrable=True,
    )
    get_token >> wait_until_near_expiry >> refresh_token
