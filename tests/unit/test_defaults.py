"""Every default is written once: each parameter that takes one defaults to the value in ``defaults``."""

from __future__ import annotations

import inspect

import pytest

from airflow_sfi import defaults
from airflow_sfi.config import SfiConfig
from airflow_sfi.hooks.feed import SfiFeedHook
from airflow_sfi.hooks.sfi import SfiHook
from airflow_sfi.operators.ws_token import SfiWsTokenOperator
from airflow_sfi.sensors.match_event import SfiMatchEventSensor
from airflow_sfi.sensors.ws_token import SfiWsTokenExpirySensor
from airflow_sfi.triggers.base import SfiFeedTrigger

EXPECTED = {
    "sfi_conn_id": defaults.CONN_ID,
    "renew_margin": defaults.RENEW_MARGIN,
    "ping_interval": defaults.PING_INTERVAL,
    "rapidapi_host": defaults.RAPIDAPI_HOST,
    "timeout": defaults.TIMEOUT,
    "max_attempts": defaults.MAX_ATTEMPTS,
    "max_retry_wait": defaults.MAX_RETRY_WAIT,
}


@pytest.mark.parametrize(
    "owner",
    [SfiConfig, SfiHook, SfiFeedHook, SfiWsTokenOperator, SfiWsTokenExpirySensor, SfiMatchEventSensor, SfiFeedTrigger],
)
def test_parameters_default_to_the_one_value(owner: type) -> None:
    parameters = inspect.signature(owner).parameters
    found = {name: p.default for name, p in parameters.items() if name in EXPECTED}
    assert found, f"{owner.__name__} takes none of the defaulted parameters"
    assert found == {name: EXPECTED[name] for name in found}


def test_the_hook_registers_the_connection_type_and_id() -> None:
    assert (SfiHook.conn_type, SfiHook.default_conn_name) == (defaults.CONN_TYPE, defaults.CONN_ID)
