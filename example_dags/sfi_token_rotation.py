"""
Keep a WebSocket token valid, forever: each run picks up the token in hand and refreshes it before it expires.

``@continuous`` with ``max_active_runs=1`` starts the next run as soon as one ends, so exactly one
rotation is in flight. ``get_token`` reuses the token the previous run published in the Variable
``sfi_ws_token`` while it is valid (no API call); only the first run, or a run after a gap, calls
``ws/new``. ``refresh_token`` then waits in the triggerer until ``SFI_RENEW_MARGIN_SECONDS``
(default 300, the vendor's advice) before expiry, renews the token there, publishes it to the
Variable and ends the task with it as its XCom: no worker slot, no scheduler round trip at the
refresh moment. Where ``ws/renew`` is not available it waits out the old token and gets a new one.
"""

from __future__ import annotations

import datetime
import os

import pendulum
from airflow.sdk import DAG

from airflow_sfi.operators.ws_token import SfiWsTokenOperator

RENEW_MARGIN = datetime.timedelta(seconds=float(os.environ.get("SFI_RENEW_MARGIN_SECONDS", "300")))

with DAG(
    dag_id="sfi_token_rotation",
    schedule="@continuous",
    max_active_runs=1,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["sfi"],
    doc_md=__doc__,
    default_args={"retries": 2, "retry_delay": datetime.timedelta(seconds=10)},
):
    get_token = SfiWsTokenOperator(
        task_id="get_token", required_channels=["MAIN"], variable_key="sfi_ws_token", reuse_published=True
    )
    refresh_token = SfiWsTokenOperator(
        task_id="refresh_token",
        expires_at=get_token.output["expires_at"],
        renew_margin=RENEW_MARGIN,
        required_channels=["MAIN"],
        variable_key="sfi_ws_token",
        deferrable=True,
    )
    get_token >> refresh_token
