"""SfiWsTokenExpiryTrigger: fires at the refresh time, with kwargs that hold no secret."""

from __future__ import annotations

import asyncio
import datetime
import json
import time

import pendulum
import pytest
from airflow.serialization.serialized_objects import BaseSerialization
from airflow.triggers.base import TaskSuccessEvent, TriggerEvent

from airflow_sfi.exceptions import SfiChannelError
from airflow_sfi.hooks.sfi import SfiHook
from airflow_sfi.protocol.token import WsToken
from airflow_sfi.sandbox import SandboxServer
from airflow_sfi.triggers.ws_token import SfiWsTokenExpiryTrigger, SfiWsTokenRefreshTrigger
from tests.helpers import SandboxClock


def first_event(trigger: SfiWsTokenExpiryTrigger | SfiWsTokenRefreshTrigger) -> TriggerEvent:
    async def first() -> TriggerEvent:
        async for event in trigger.run():
            return event
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(asyncio.wait_for(first(), timeout=10))


@pytest.mark.parametrize("end_from_trigger", [False, True])
def test_fires_at_the_refresh_time_not_before(end_from_trigger: bool) -> None:
    expires = pendulum.now("UTC").add(seconds=300.15)
    trigger = SfiWsTokenExpiryTrigger(
        expires_at=expires.isoformat(), renew_margin=datetime.timedelta(seconds=300), end_from_trigger=end_from_trigger
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
    trigger = SfiWsTokenExpiryTrigger(
        expires_at="{{ ti.xcom_pull('get_token') }}", renew_margin=datetime.timedelta(seconds=60)
    )
    trigger.expires_at = "2024-01-15 14:30:00"  # what the triggerer's rendering leaves in place
    assert trigger.refresh_at() == pendulum.datetime(2024, 1, 15, 14, 29, tz="UTC")
    assert trigger.serialize()[1]["expires_at"] == "2024-01-15 14:30:00"


def test_serialized_kwargs_rebuild_the_same_trigger() -> None:
    trigger = SfiWsTokenExpiryTrigger(
        expires_at="2024-01-15 14:30:00", renew_margin=datetime.timedelta(seconds=90.5), end_from_trigger=True
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_sfi.triggers.ws_token.SfiWsTokenExpiryTrigger"
    # As the triggerer stores and loads them.
    stored = BaseSerialization.deserialize(json.loads(json.dumps(BaseSerialization.serialize(kwargs))))
    assert SfiWsTokenExpiryTrigger(**stored).serialize() == (classpath, kwargs)


def refresh_trigger_for(api: SandboxServer, channels: list[str]) -> tuple[WsToken, SfiWsTokenRefreshTrigger]:
    """
    A token just issued, and a trigger for it whose refresh time has passed (the margin is more than the
    sandbox's whole TTL); by the renewal the API's clock is a second on, so that renewing extends the token.
    """
    held = SfiHook().get_ws_token()
    api.sandbox.clock = clock = SandboxClock()
    clock.offset = 1.0
    trigger = SfiWsTokenRefreshTrigger(
        sfi_conn_id="sfi_default",
        expires_at=held.expires_at.isoformat(),
        renew_margin=datetime.timedelta(seconds=601),
        required_channels=channels,
    )
    return held, trigger


@pytest.mark.sfi_sandbox(ttl=600)
def test_refresh_trigger_renews_and_ends_the_task_with_the_token_as_xcom(sfi_sandbox: SandboxServer) -> None:
    held, trigger = refresh_trigger_for(sfi_sandbox, ["MAIN"])
    classpath, kwargs = trigger.serialize()
    assert SfiWsTokenRefreshTrigger(**kwargs).serialize() == (classpath, kwargs)
    event = first_event(trigger)
    assert isinstance(event, TaskSuccessEvent)
    assert event.xcoms is not None and event.xcoms["return_value"]["token"] == held.token
    assert event.xcoms["expires_at"] > held.expires_at.isoformat()  # multiple_outputs, as the operator pushes
    for text in (repr(trigger), json.dumps(BaseSerialization.serialize(kwargs)), repr(event)):
        assert held.token not in text and "sandbox-key-pro" not in text
    assert [c.endpoint for c in sfi_sandbox.calls()] == ["ws/new", "ws/renew"]


@pytest.mark.sfi_sandbox(ttl=600)
def test_refresh_trigger_checks_the_channels(sfi_sandbox: SandboxServer) -> None:
    _, trigger = refresh_trigger_for(sfi_sandbox, ["STATS"])
    with pytest.raises(SfiChannelError, match="does not grant STATS"):
        first_event(trigger)
