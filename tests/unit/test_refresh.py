"""The refresh policy against the sandbox in each of its ws/renew modes, on a clock that jumps instead of waiting."""

from __future__ import annotations

import asyncio
import datetime
import logging

import pytest

from airflow_sfi import refresh as refresh_module
from airflow_sfi.exceptions import SfiAuthError, SfiError
from airflow_sfi.hooks.sfi import SfiHook
from airflow_sfi.refresh import refresh_token
from airflow_sfi.sandbox import SandboxServer
from tests.helpers import SandboxClock, use_connection

MARGIN = datetime.timedelta(seconds=60)
log = logging.getLogger("test_refresh")


def refresh(
    api: SandboxServer,
    clock: SandboxClock,
    action: str = "refresh",
    *,
    key: str = "sandbox-key-pro",
    auth: str = "direct",
):
    hook = SfiHook("sfi_refresh")
    held = hook.get_ws_token()
    token = asyncio.run(refresh_token(hook, held.expires_at, MARGIN, action, log, sleep=clock.sleep_until))  # type: ignore[arg-type]
    return held, token


@pytest.fixture
def clock() -> SandboxClock:
    return SandboxClock()


def sandbox(
    clock: SandboxClock, monkeypatch: pytest.MonkeyPatch, auth: str = "direct", **options: object
) -> SandboxServer:
    api = SandboxServer(ttl=600, clock=clock, **options).start()
    use_connection(monkeypatch, api.connection("sandbox-key-pro", auth), "sfi_refresh")
    return api


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """What the refresh warned about (the sandbox's servers log at INFO in the background)."""
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("auth", ["direct", "rapidapi"])
def test_renew_extends_the_held_token_before_it_expires(
    clock: SandboxClock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, auth: str
) -> None:
    api = sandbox(clock, monkeypatch, auth)
    try:
        with caplog.at_level(logging.WARNING, logger="test_refresh"):
            held, token = refresh(api, clock)
        assert token.token == held.token and token.expires_at > held.expires_at
        assert clock.slept_until == [(held.expires_at - MARGIN).timestamp()]  # renewed at the refresh time
        assert api.valid_at(held.token, clock())  # the token never lapsed
        assert [c.path.rstrip("/").rsplit("/", 2)[-2:] for c in api.calls()] == [["ws", "new"], ["ws", "renew"]]
        assert not warnings(caplog)
    finally:
        api.stop()


@pytest.mark.parametrize("auth", ["direct", "rapidapi"])
def test_without_renew_it_waits_out_the_token_with_one_warning(
    clock: SandboxClock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, auth: str
) -> None:
    api = sandbox(clock, monkeypatch, auth, renew="absent")
    try:
        with caplog.at_level(logging.WARNING, logger="test_refresh"):
            held, token = refresh(api, clock)
        assert token.token != held.token and token.is_new
        assert clock.slept_until == [(held.expires_at - MARGIN).timestamp(), held.expires_at.timestamp()]
        (warning,) = warnings(caplog)
        assert "ws/renew is not available (HTTP 404)" in warning.getMessage()
        assert [c.status for c in api.calls()] == [200, 404, 200]
    finally:
        api.stop()


def test_renew_with_no_active_token_falls_back_too(
    clock: SandboxClock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    api = sandbox(clock, monkeypatch)
    try:
        original = clock.sleep_until

        async def sleep_then_revoke(moment: datetime.datetime) -> None:
            await original(moment)
            if len(clock.slept_until) == 1:
                api.expire_tokens()  # the token was revoked before the renew

        clock.sleep_until = sleep_then_revoke  # type: ignore[method-assign]
        with caplog.at_level(logging.WARNING, logger="test_refresh"):
            held, token = refresh(api, clock)
        assert token.token != held.token
        (warning,) = warnings(caplog)
        assert "ws/renew found no active token (No active token to renew)" in warning.getMessage()
    finally:
        api.stop()


def test_renew_alone_fails_clearly_when_renew_is_absent(clock: SandboxClock, monkeypatch: pytest.MonkeyPatch) -> None:
    api = sandbox(clock, monkeypatch, renew="absent")
    try:
        with pytest.raises(SfiError, match=r"could not renew the token: ws/renew is not available \(HTTP 404\)"):
            refresh(api, clock, "renew")
        assert len(api.calls()) == 2  # never loops on renew
    finally:
        api.stop()


def test_new_waits_out_the_token_and_makes_one_call(clock: SandboxClock, monkeypatch: pytest.MonkeyPatch) -> None:
    api = sandbox(clock, monkeypatch)
    try:
        held, token = refresh(api, clock, "new")
        assert token.is_new and token.token != held.token
        assert clock.slept_until == [held.expires_at.timestamp()]
        assert [c.endpoint for c in api.calls()] == ["ws/new", "ws/new"]
    finally:
        api.stop()


def test_a_lagging_api_is_asked_again_until_the_new_token_comes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(refresh_module, "NEW_TOKEN_PAUSE_SECONDS", 0.01)
    clock = SandboxClock()
    api = sandbox(clock, monkeypatch)

    def lagging() -> float:
        # The API's clock is 0.4 s behind ours when it is asked at the old token's expiry (its second
        # request), and has caught up by the next one: the held token once more, then a new one.
        return clock() - (0.4 if len(api.sandbox.requests) == 1 else 0.0)

    api.sandbox.clock = lagging
    try:
        held, token = refresh(api, clock, "new")
        assert token.token != held.token
        assert [c.status for c in api.calls()] == [200, 200, 200]
        assert api.issued_tokens == [held.token, token.token]
    finally:
        api.stop()


def test_other_renew_failures_are_raised_not_papered_over(clock: SandboxClock, monkeypatch: pytest.MonkeyPatch) -> None:
    api = sandbox(clock, monkeypatch)
    try:
        hook = SfiHook("sfi_refresh")
        held = hook.get_ws_token()
        api.sandbox.keys["sandbox-key-pro"] = type(api.sandbox.keys["sandbox-key-pro"])("PRO", "suspended")
        with pytest.raises(SfiAuthError, match="Token is suspended"):
            asyncio.run(refresh_token(hook, held.expires_at, MARGIN, "refresh", log, sleep=clock.sleep_until))
    finally:
        api.stop()
