"""One DAG per sensor mode, each waiting the same time, for the worker-time benchmark."""

from __future__ import annotations

import datetime
import os

import pendulum
from airflow.sdk import DAG

from airflow_sfi.operators.ws_token import SfiWsTokenOperator
from airflow_sfi.sensors.ws_token import SfiWsTokenExpirySensor

MARGIN = datetime.timedelta(seconds=float(os.environ.get("SFI_BENCH_MARGIN_SECONDS", "5")))

for mode in ("poke", "reschedule", "deferrable"):
    with DAG(
        dag_id=f"sfi_bench_wait_{mode}",
        schedule=None,
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        catchup=False,
    ):
        get_token = SfiWsTokenOperator(task_id="get_token")
        get_token >> SfiWsTokenExpirySensor(
            task_id="wait",
            expires_at=get_token.output["expires_at"],
            renew_margin=MARGIN,
            mode="reschedule" if mode == "reschedule" else "poke",
            deferrable=mode == "deferrable",
            poke_interval=1,
        )
