"""
Direct auth (API token in the ``sfi_default`` connection): get a token, use its details downstream,
and publish it to the Variable ``sfi_ws_token`` for a service outside Airflow to read.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_sfi.operators.ws_token import SfiWsTokenOperator

with DAG(
    dag_id="sfi_direct_token",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["sfi"],
    params={"sfi_conn_id": "sfi_default"},
):
    get_token = SfiWsTokenOperator(
        task_id="get_token",
        sfi_conn_id="{{ params.sfi_conn_id }}",  # templated: a run can be triggered for another connection
        required_channels=["MAIN"],
        variable_key="sfi_ws_token",
    )

    @task
    def plan_limits(max_connections: int, channels: list[str]) -> str:
        """What a consumer would read before opening connections (no secret in it)."""
        return f"{max_connections} connections, channels {', '.join(channels)}"

    plan_limits(get_token.output["max_connections"], get_token.output["allowed_channels"])
