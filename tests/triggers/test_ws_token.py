"""SfiWsTokenExpiryTrigger: fires at the refresh time, with kwargs that hold no secret."""

from __future__ import annotations

import asyncio
import time

import pendulum
import pytest
from airflow.triggers.base import TaskSuccessEvent, TriggerEvent

from airflow_sfi.triggers.ws_token import SfiWsTokenExpiryTrigger


def first_event(trigger: SfiWsTokenExpiryTrigger) -> TriggerEvent:
    async def first() -> TriggerEvent:
        async for event in trigger.run():
            return event
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(asyncio.wait_for(first(), timeout=10))


@pytest.mark.parametrize("end_from_trigger", [False, True])
def test_fires_at_the_refresh_time_not_before(end_from_trigger: bool) -> None:
    expires = pendulum.now("UTC").add(seconds=300.4)
    trigger = SfiWsTokenExpiryTrigger(
        expires_at=expires.isoformat(), refresh_margin_seconds=300, end_from_trigger=end_from_trigger
    )
    started = time.monotonic()
    event = first_event(trigger)
    assert pendulum.now("UTC") >= expires.subtract(seconds=300)
    assert time.monotonic() - started < 2  # no one-second polling steps past the moment
    if end_from_trigger:
        assert isinstance(event, TaskSuccessEvent)
    else:
        assert event.payload == {"refresh_at": expires.subtract(seconds=300).isoformat()}


def test_a_template_is_read_only_once_rendered() -> None:
    trigger = SfiWsTokenExpiryTrigger(expires_at="{{ ti.xcom_pull('get_token') }}", refresh_margin_seconds=60)
    trigger.expires_at = "2024-01-15 14:30:00"  # what the triggerer's rendering leaves in place
    assert trigger.refresh_at() == pendulum.datetime(2024, 1, 15, 14, 29, tz="UTC")
    assert trigger.serialize()[1]["expires_at"] == "2024-01-15 14:30:00"


def test_serialized_kwargs_rebuild_the_same_trigger() -> None:
    trigger = SfiWsTokenExpiryTrigger(
        expires_at="2024-01-15 14:30:00", refresh_margin_seconds=90.5, end_from_trigger=True
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_sfi.triggers.ws_token.SfiWsTokenExpiryTrigger"
    assert all(isinstance(value, (str, float, bool)) for value in kwargs.values())
    assert SfiWsTokenExpiryTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_the_name_before_the_rename_still_loads_with_a_warning() -> None:
    import airflow_sfi.triggers.ws_token as module

    with pytest.warns(DeprecationWarning, match="SfiRefreshTrigger is deprecated"):
        old = module.SfiRefreshTrigger
    trigger = old(expires_at="2024-01-15 14:30:00", refresh_margin_seconds=300.0, end_from_trigger=True)
    assert trigger.refresh_at() == pendulum.datetime(2024, 1, 15, 14, 25, tz="UTC")
