"""SfiHook against the sandbox API on loopback, in both auth modes."""

from __future__ import annotations

import json
import logging
import socket
import time
import traceback

import pendulum
import pytest
from airflow.providers.common.compat.sdk import AirflowNotFoundException, redact

from airflow_sfi.exceptions import (
    SfiApiError,
    SfiAuthError,
    SfiRateLimitError,
    SfiResponseError,
    SfiTransportError,
)
from airflow_sfi.hooks.sfi import SfiHook
from airflow_sfi.sandbox import SandboxServer
from tests.helpers import use_connection


class FakeSleep:
    """Stands in for the retries' sleep: records each wait and moves the sandbox's clock instead."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.offset += seconds

    def clock(self) -> float:
        return time.time() + self.offset


SLEEP = FakeSleep()


@pytest.fixture(autouse=True)
def no_real_backoff(monkeypatch: pytest.MonkeyPatch) -> FakeSleep:
    SLEEP.offset, SLEEP.waits = 0.0, []
    monkeypatch.setattr(SfiHook, "retry_sleep", SLEEP)
    return SLEEP


def use(monkeypatch: pytest.MonkeyPatch, conn: str | dict, conn_id: str = "sfi_default") -> SfiHook:
    use_connection(monkeypatch, conn, conn_id)
    return SfiHook(conn_id)


def everything_said(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc)


def test_direct_mode_reuses_the_active_token_and_the_session(sfi_sandbox: SandboxServer) -> None:
    hook = SfiHook()
    first = hook.get_ws_token()
    second = hook.get_ws_token()
    assert first.is_new is True and second.is_new is False
    assert second.token == first.token and second.expires_at == first.expires_at
    assert first.allowed_channels == ("MAIN",)
    assert 1400 < first.seconds_left() <= 1501
    calls = sfi_sandbox.calls("ws/new")
    assert [(c.path, c.auth_type, c.key) for c in calls] == [("/v1/ws/new/", "direct", "sandbox-key-pro")] * 2
    assert calls[0].client_port == calls[1].client_port  # one keep-alive connection
    assert hook.last_rate_limit is not None and hook.last_rate_limit.remaining == 998


@pytest.mark.parametrize("host", [None, "soccerfootballinfo.rapidapi.com"])
def test_rapidapi_mode(monkeypatch: pytest.MonkeyPatch, sfi_sandbox: SandboxServer, host: str | None) -> None:
    extra = {"rapidapi_host": host} if host else {}
    hook = use(monkeypatch, sfi_sandbox.connection("sandbox-key-mega", "rapidapi", **extra), "sfi_rapid")
    token = hook.get_ws_token()
    assert token.is_new and "STATS_REALTIME" in token.allowed_channels
    (call,) = sfi_sandbox.calls()
    assert (call.path, call.auth_type, call.key, call.status) == ("/ws/new/", "rapidapi", "sandbox-key-mega", 200)
    assert hook.last_rate_limit is not None and hook.last_rate_limit.limit == 1000


def test_host_schema_and_port_as_separate_fields(monkeypatch: pytest.MonkeyPatch, sfi_sandbox: SandboxServer) -> None:
    conn = {
        "conn_type": "sfi",
        "host": "127.0.0.1",
        "schema": "http",
        "port": sfi_sandbox.port,
        "password": "sandbox-key-ultra",
    }
    assert use(monkeypatch, conn).get_ws_token().allowed_channels == ("MAIN", "STATS", "ODDS")
    assert SfiHook().config.base_url == sfi_sandbox.url


def test_uri_form_connection(monkeypatch: pytest.MonkeyPatch, sfi_sandbox: SandboxServer) -> None:
    uri = f"sfi://:sandbox-key-mega@127.0.0.1:{sfi_sandbox.port}/http?auth_type=rapidapi"
    assert use(monkeypatch, uri).get_ws_token().is_new
    assert sfi_sandbox.calls()[0].auth_type == "rapidapi"


@pytest.mark.parametrize(
    ("key", "auth_type", "error", "status", "code"),
    [
        ("no-such-key-1", "direct", SfiAuthError, 401, 2),
        ("sandbox-key-suspended", "direct", SfiAuthError, 401, 3),
        ("sandbox-key-basic", "direct", SfiAuthError, 401, 4),
        ("sandbox-key-wrong-ip", "direct", SfiAuthError, 401, 5),
        ("no-such-key-1", "rapidapi", SfiAuthError, 401, None),
        ("sandbox-key-suspended", "rapidapi", SfiAuthError, 401, 3),
        ("sandbox-key-basic", "rapidapi", SfiAuthError, 401, 4),
    ],
)
def test_documented_errors_are_typed_and_not_retried(
    monkeypatch: pytest.MonkeyPatch, sfi_sandbox: SandboxServer, key, auth_type, error, status, code
) -> None:
    hook = use(monkeypatch, sfi_sandbox.connection(key, auth_type))
    with pytest.raises(error) as caught:
        hook.get_ws_token()
    assert (caught.value.http_status, caught.value.code) == (status, code)
    assert caught.value.vendor_message and caught.value.vendor_message in str(caught.value)
    assert key not in everything_said(caught.value)
    assert len(sfi_sandbox.calls()) == 1


def test_rapidapi_host_not_subscribed(monkeypatch: pytest.MonkeyPatch, sfi_sandbox: SandboxServer) -> None:
    hook = use(monkeypatch, sfi_sandbox.connection("sandbox-key-pro", "rapidapi", rapidapi_host="wrong.example"))
    with pytest.raises(SfiAuthError, match="403: You are not subscribed"):
        hook.get_ws_token()


def test_unknown_path_behind_a_proxy_prefix(monkeypatch: pytest.MonkeyPatch, sfi_sandbox: SandboxServer) -> None:
    conn = json.loads(sfi_sandbox.connection())
    conn["host"] += "/proxy"
    with pytest.raises(SfiApiError, match=r"HTTP 404, code 6: Not Found") as caught:
        use(monkeypatch, conn).get_ws_token()
    assert caught.value.code == 6
    assert sfi_sandbox.calls()[0].path == "/proxy/v1/ws/new/"


@pytest.mark.sfi_sandbox(rate_limit=1)
def test_rate_limit_for_the_next_hour_is_raised_not_slept(sfi_sandbox: SandboxServer) -> None:
    hook = SfiHook()
    hook.get_ws_token()
    started = time.monotonic()
    with pytest.raises(
        SfiRateLimitError, match=r"rate limit reached \(HTTP 429, code 7: Too many requests\); retry at "
    ) as caught:
        hook.get_ws_token()
    assert time.monotonic() - started < 5
    reset_at = caught.value.reset_at
    assert reset_at is not None and 3590 < (reset_at - pendulum.now("UTC")).total_seconds() <= 3600
    assert len(sfi_sandbox.calls()) == 2


@pytest.mark.sfi_sandbox(rate_limit=1, retry_after=True, rate_window=2, clock=SLEEP.clock)
def test_short_retry_after_is_waited_out(sfi_sandbox: SandboxServer, no_real_backoff: FakeSleep) -> None:
    hook = SfiHook()
    hook.get_ws_token()
    assert hook.get_ws_token().is_new is False
    assert no_real_backoff.waits == [2.0]  # the Retry-After, not the backoff
    assert [c.status for c in sfi_sandbox.calls()] == [200, 429, 200]


def test_sandbox_throttle_is_waited_out(sfi_sandbox: SandboxServer, no_real_backoff: FakeSleep) -> None:
    sfi_sandbox.inject("throttle", delay=3)
    assert SfiHook().get_ws_token().is_new
    assert no_real_backoff.waits == [3.0]
    assert [(c.status, c.fault) for c in sfi_sandbox.calls()] == [(429, "throttle"), (200, None)]


def test_two_5xx_then_success_with_growing_backoff(sfi_sandbox: SandboxServer, no_real_backoff: FakeSleep) -> None:
    sfi_sandbox.inject("5xx", 2, status=503)
    assert SfiHook().get_ws_token().is_new
    assert [c.status for c in sfi_sandbox.calls()] == [503, 503, 200]
    first, second = no_real_backoff.waits
    assert 0.5 <= first <= 1.0 and 1.0 <= second <= 1.5  # 0.5 s doubling, plus up to 0.5 s of jitter


def test_html_pages_exhaust_the_attempts(sfi_sandbox: SandboxServer) -> None:
    sfi_sandbox.inject("html", 3)
    with pytest.raises(SfiApiError, match="HTTP 502: and an HTML page instead of JSON"):
        SfiHook().get_ws_token()
    assert len(sfi_sandbox.calls()) == 3


def test_dropped_connection_then_success(sfi_sandbox: SandboxServer) -> None:
    sfi_sandbox.inject("drop")
    assert SfiHook().get_ws_token().is_new
    assert [c.status for c in sfi_sandbox.calls()] == [None, 200]


def test_malformed_json_is_not_retried(sfi_sandbox: SandboxServer) -> None:
    sfi_sandbox.inject("malformed")
    with pytest.raises(SfiResponseError, match="HTTP 200 with a body that is not JSON"):
        SfiHook().get_ws_token()
    assert len(sfi_sandbox.calls()) == 1


def test_stall_fails_within_the_timeout(monkeypatch: pytest.MonkeyPatch, sfi_sandbox: SandboxServer) -> None:
    hook = use(monkeypatch, sfi_sandbox.connection(timeout=0.3, max_attempts=1))
    sfi_sandbox.inject("slow", delay=3)
    started = time.monotonic()
    with pytest.raises(SfiTransportError, match=r"127\.0\.0\.1:\d+: no response within the read timeout of 0.3 s"):
        hook.get_ws_token()
    assert time.monotonic() - started < 2.5


def test_connection_refused_names_the_host_but_not_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    secret = "refused-api-token-42"
    hook = use(
        monkeypatch,
        {"conn_type": "sfi", "host": f"http://127.0.0.1:{port}", "password": secret, "extra": {"max_attempts": 2}},
    )
    with pytest.raises(SfiTransportError, match=f"127.0.0.1:{port}: connection refused") as caught:
        hook.get_ws_token()
    assert caught.value.__context__ is None and caught.value.__cause__ is None
    assert secret not in everything_said(caught.value)


def test_secrets_are_registered_with_the_masker(sfi_sandbox: SandboxServer) -> None:
    hook = SfiHook()
    token = hook.get_ws_token()
    assert redact(f"key sandbox-key-pro token {token.token} at {token.server}") == "key *** token *** at ***"
    for text in (repr(hook), repr(hook.config), str(hook.config)):
        assert "sandbox-key-pro" not in text and token.token not in text


def test_test_connection(monkeypatch: pytest.MonkeyPatch, sfi_sandbox: SandboxServer) -> None:
    ok, message = SfiHook().test_connection()
    assert ok and message.startswith("Connected (direct): channels MAIN, token expires at ")
    ok, message = use(monkeypatch, sfi_sandbox.connection("sandbox-key-basic"), "sfi_basic").test_connection()
    assert not ok and "Token does not have permission" in message and "sandbox-key-basic" not in message
    # The UI tests a form under a random temporary id: the message names the field, not that id.
    ok, message = use(monkeypatch, sfi_sandbox.connection(timeout=0), "xq7rk2pz").test_connection()
    assert (ok, message) == (False, "Invalid connection: extra 'timeout' must be a number of at least 0.001, got '0'")


def test_the_hook_does_no_io_until_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SFI_DEFAULT", raising=False)
    hook = SfiHook()  # no connection exists, and constructing must not look for it
    with pytest.raises(AirflowNotFoundException):
        hook.get_ws_token()


def test_no_log_record_carries_the_key_even_at_debug(
    monkeypatch: pytest.MonkeyPatch, sfi_sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    key = "sandbox-key-mega"  # direct mode: the key travels in the query string, which urllib3 logs at DEBUG
    hook = use(monkeypatch, sfi_sandbox.connection(key))
    sfi_sandbox.inject("drop")
    sfi_sandbox.inject("5xx")
    with caplog.at_level(logging.DEBUG):
        token = hook.get_ws_token()
    said = "\n".join(record.getMessage() for record in caplog.records)
    assert "GET /v1/ws/new/?t=***" in said  # the request lines are there, the key is not
    assert key not in said and token.token not in said
    assert [c.status for c in sfi_sandbox.calls()] == [None, 500, 200]


def test_a_parser_bug_is_a_response_error_that_keeps_its_traceback(
    sfi_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import airflow_sfi.hooks.sfi as module

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("a parser bug")

    monkeypatch.setattr(module, "parse_envelope", broken)
    with pytest.raises(SfiResponseError, match=r"could not be read \(KeyError\)") as raised:
        SfiHook().get_ws_token()
    assert isinstance(raised.value.__cause__, KeyError)
    assert "sandbox-key-pro" not in str(raised.value)


def test_the_url_log_filter_is_installed_once_by_the_first_session() -> None:
    def filters() -> int:
        return sum(isinstance(f, module._UrlLogRedactor) for f in logging.getLogger("urllib3.connectionpool").filters)

    import airflow_sfi.hooks.sfi as module

    SfiHook().session  # noqa: B018 - the session is what installs it
    SfiHook().session  # noqa: B018
    assert filters() == 1
