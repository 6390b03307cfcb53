"""SfiHook and SfiAsyncHook against the sandbox API on loopback, in both auth modes."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import socket
import threading
import time
import traceback
import weakref
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import AirflowNotFoundException, redact

from airflow_sfi.exceptions import (
    SfiApiError,
    SfiAuthError,
    SfiConfigError,
    SfiRateLimitError,
    SfiResponseError,
    SfiTransportError,
)
from airflow_sfi.hooks.sfi import SfiAsyncHook, SfiHook
from airflow_sfi.protocol.endpoints import ENDPOINTS
from airflow_sfi.protocol.envelope import Envelope, Pagination, RateLimit
from airflow_sfi.sandbox import SandboxServer
from airflow_sfi.sandbox.live import LEAGUES, MATCHES
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


def test_two_5xx_then_success_with_growing_backoff(
    sfi_sandbox: SandboxServer,
    no_real_backoff: FakeSleep,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(SfiHook, "log", logging.getLogger("sfi.test"))  # a stdlib logger, which caplog sees
    sfi_sandbox.inject("5xx", 2, status=503)
    with caplog.at_level(logging.WARNING):
        assert SfiHook().get_ws_token().is_new
    assert [c.status for c in sfi_sandbox.calls()] == [503, 503, 200]
    first, second = no_real_backoff.waits
    assert 0.5 <= first <= 1.0 and 1.0 <= second <= 1.5  # 0.5 s doubling, plus up to 0.5 s of jitter
    said = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert [m.rsplit("(", 1)[1] for m in said] == ["attempt 2 of 3)", "attempt 3 of 3)"]
    # The wait as slept, jitter and all (0.95 s and more reads "1.0 s").
    assert said[0].startswith(f"SFI API error (HTTP 503, code 0: Internal Server Error); retrying in {first:.1f} s")


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


# The REST data endpoints: get, pages, paginate and the typed methods

TODAY = pendulum.now("UTC").format("YYYYMMDD")


def test_get_a_data_endpoint_directly(sfi_sandbox: SandboxServer) -> None:
    hook = SfiHook()
    envelope = hook.get("matches/view/basic", i=MATCHES[0])
    (match,) = envelope.result
    assert match["id"] == MATCHES[0] and {e["type"] for e in match["events"]} >= {"goal"}
    assert envelope.http_status == 200 and envelope.pagination is None
    assert envelope.rate_limit.remaining == 999 and hook.last_rate_limit == envelope.rate_limit
    (call,) = sfi_sandbox.calls()
    assert (call.path, call.auth_type, call.endpoint, call.status) == (
        "/v1/matches/view/basic/",
        "direct",
        "matches/view/basic",
        200,
    )


@pytest.mark.parametrize("host", [None, "soccerfootballinfo.rapidapi.com"])
def test_get_a_data_endpoint_through_rapidapi(
    monkeypatch: pytest.MonkeyPatch, sfi_sandbox: SandboxServer, host: str | None
) -> None:
    extra = {"rapidapi_host": host} if host else {}
    hook = use(monkeypatch, sfi_sandbox.connection("sandbox-key-ultra", "rapidapi", **extra))
    envelope = hook.get("teams/list", p=2)
    assert envelope.pagination == Pagination(page=2, per_page=50, items=401) and len(envelope.result) == 50
    assert hook.last_rate_limit is not None and hook.last_rate_limit.limit == 1000
    (call,) = sfi_sandbox.calls()
    assert (call.path, call.auth_type, call.key, call.status) == ("/teams/list/", "rapidapi", "sandbox-key-ultra", 200)


def test_every_documented_endpoint_is_reachable_through_get(
    monkeypatch: pytest.MonkeyPatch, sfi_sandbox: SandboxServer
) -> None:
    hook = use(monkeypatch, sfi_sandbox.connection("sandbox-key-mega"))
    first = {kind: hook.get(f"{kind}/list").result[0]["id"] for kind in ("stadiums", "managers", "referees", "players",
                                                                         "teams", "championships")}  # fmt: skip
    ids = {"matches": MATCHES[0], **first}
    for name, endpoint in ENDPOINTS.items():
        params: dict[str, object] = {"d": TODAY, "x": first["teams"], "y": hook.get("teams/list").result[1]["id"]}
        params = {k: v for k, v in params.items() if k in endpoint.required}
        if "i" in endpoint.required:
            params["i"] = ids[name.split("/")[0]]
        if name.startswith("matches/by/"):
            params["c"] = LEAGUES[0]
        envelope = hook.get(name, **params)
        assert envelope.http_status == 200, name
    reached = {c.endpoint for c in sfi_sandbox.calls() if c.status == 200}
    assert reached == set(ENDPOINTS)


@pytest.mark.parametrize(
    ("key", "endpoint", "params", "error", "status", "code", "said"),
    [
        (
            "sandbox-key-basic",
            "matches/view/basic",
            {"i": MATCHES[0]},
            SfiAuthError,
            401,
            4,
            "does not have permission",
        ),
        ("sandbox-key-pro", "matches/view/full", {"i": MATCHES[0]}, SfiAuthError, 401, 4, "does not have permission"),
        ("sandbox-key-pro", "matches/view/basic", {"i": "0" * 16}, SfiApiError, 404, 6, "Not Found"),
        # Ids are checked as non-empty strings only: the API, not the hook, refuses one it does not know.
        ("sandbox-key-pro", "teams/view", {"i": "not-a-hex-id"}, SfiApiError, 400, 7, "Wrong i param"),
        ("sandbox-key-pro", "matches/by/basic", {}, SfiApiError, 400, 1, "Missing c param"),
        ("sandbox-key-pro", "teams/list", {"l": "xx_XX"}, SfiApiError, 400, 7, "Wrong l param"),
    ],
)
def test_data_errors_are_typed_and_not_retried(
    monkeypatch: pytest.MonkeyPatch, sfi_sandbox: SandboxServer, key, endpoint, params, error, status, code, said
) -> None:
    hook = use(monkeypatch, sfi_sandbox.connection(key))
    with pytest.raises(error) as caught:
        hook.get(endpoint, **params)
    assert (type(caught.value), caught.value.http_status, caught.value.code) == (error, status, code)
    assert said in str(caught.value) and key not in everything_said(caught.value)
    assert len(sfi_sandbox.calls()) == 1


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda h: h.get("matches/veiw/basic", i=MATCHES[0]), "did you mean 'matches/view/basic'?"),
        (lambda h: h.get("matches/view/basic"), "matches/view/basic needs i (an id)"),
        (lambda h: h.get("matches/view/basic", i=""), "parameter 'i' is empty"),
        (lambda h: h.get("matches/view/basic", id=MATCHES[0]), "takes no parameter 'id'"),
        (lambda h: h.get("matches/day/basic", d="20230229"), "day '20230229' is not a real date (YYYYMMDD)"),
        (lambda h: h.get("matches/day/basic", d="2023-02-01"), "a day must be a date or a 'YYYYMMDD' string"),
        (lambda h: h.match(""), "parameter 'i' is empty"),
        (lambda h: h.team(""), "parameter 'i' is empty"),
        (lambda h: h.matches_of_day("yesterday"), "a day must be a date or a 'YYYYMMDD' string, got 'yesterday'"),
        (lambda h: h.paginate("teams/list", p=2), "p is set by the pagination itself"),
        (lambda h: h.pages("teams/list", p=None), "p is set by the pagination itself"),
        (lambda h: h.teams(p=1), "p is set by the pagination itself"),
    ],
)
def test_call_mistakes_are_raised_before_any_call(sfi_sandbox: SandboxServer, call, fragment: str) -> None:
    with pytest.raises(SfiConfigError) as caught:
        call(SfiHook())
    assert fragment in str(caught.value)
    assert sfi_sandbox.calls() == []


def test_call_mistakes_need_no_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SFI_DEFAULT", raising=False)
    with pytest.raises(SfiConfigError, match="did you mean 'live/basic'"):
        SfiHook().get("live/basics")


def test_token_status_in_both_modes(monkeypatch: pytest.MonkeyPatch, sfi_sandbox: SandboxServer) -> None:
    status = SfiHook().token_status()
    assert status["plan"] == "PRO" and status["usage"]["pagination_items"] == 25
    assert [c.path for c in sfi_sandbox.calls()] == ["/v1/token/status/"]
    rapid = use(monkeypatch, sfi_sandbox.connection("sandbox-key-mega", "rapidapi"), "sfi_rapid")
    with pytest.raises(SfiConfigError, match="token/status is offered by the direct API only, not in rapidapi mode"):
        rapid.token_status()
    with pytest.raises(SfiConfigError, match="direct API only"):
        rapid.get("token/status")
    assert len(sfi_sandbox.calls()) == 1


@pytest.mark.sfi_sandbox(per_page=50)
def test_pages_hold_one_page_at_a_time(sfi_sandbox: SandboxServer) -> None:
    hook = SfiHook()
    seen: list[int] = []
    earlier: list[weakref.ref[Envelope]] = []
    for envelope in hook.pages("teams/list"):
        assert envelope.pagination is not None and envelope.pagination.page == len(seen) + 1
        assert [ref() for ref in earlier if ref() is not None] == []  # every earlier page is freed
        assert envelope.rate_limit == hook.last_rate_limit
        seen.append(len(envelope.result))
        earlier.append(weakref.ref(envelope))
    assert seen == [50] * 8 + [1]  # 401 teams
    assert [c.status for c in sfi_sandbox.calls("teams/list")] == [200] * 9


@pytest.mark.sfi_sandbox(per_page=50)
def test_paginate_yields_every_item_once_holding_one_page(
    sfi_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = SfiHook()
    fetched: list[weakref.ref[Envelope]] = []
    call = hook._call

    def recording(*args: Any, **kwargs: Any) -> Envelope:
        envelope = call(*args, **kwargs)
        fetched.append(weakref.ref(envelope))
        return envelope

    monkeypatch.setattr(hook, "_call", recording)
    ids, most_held = [], 0
    for team in hook.paginate("teams/list"):
        ids.append(team["id"])
        most_held = max(most_held, sum(ref() is not None for ref in fetched))
    assert len(ids) == len(set(ids)) == 401 and len(fetched) == 9
    assert most_held == 1


@pytest.mark.sfi_sandbox(per_page=25, extra_matches=97)
def test_matches_of_day_across_pages(sfi_sandbox: SandboxServer) -> None:
    matches = list(SfiHook().matches_of_day(pendulum.now("UTC").date()))
    assert len(matches) == 100 and set(MATCHES) <= {m["id"] for m in matches}
    assert all(m["date"].startswith(pendulum.now("UTC").format("YYYY-MM-DD")) for m in matches)
    assert len(sfi_sandbox.calls("matches/day/basic")) == 4


def test_an_empty_day_is_one_call(sfi_sandbox: SandboxServer) -> None:
    hook = SfiHook()
    assert list(hook.matches_of_day("20200101")) == []
    (envelope,) = hook.pages("matches/day/basic", d="20200101")
    assert envelope.pagination == Pagination(page=1, per_page=25, items=0)
    assert len(sfi_sandbox.calls()) == 2


def test_an_endpoint_without_pages_is_one_page(sfi_sandbox: SandboxServer) -> None:
    (envelope,) = SfiHook().pages("matches/view/basic", i=MATCHES[1])
    assert envelope.result[0]["id"] == MATCHES[1] and envelope.pagination is None
    assert len(sfi_sandbox.calls()) == 1


@pytest.mark.sfi_sandbox(per_page=50)
def test_a_malformed_page_halfway_is_named(sfi_sandbox: SandboxServer) -> None:
    pages = SfiHook().pages("teams/list")
    assert [len(next(pages).result), len(next(pages).result)] == [50, 50]
    sfi_sandbox.inject("malformed")
    with pytest.raises(SfiResponseError) as caught:
        next(pages)
    assert str(caught.value).startswith(
        "teams/list page 3 of 9: SFI API answered HTTP 200 with a body that is not JSON"
    )
    assert caught.value.http_status == 200 and isinstance(caught.value.__cause__, SfiResponseError)
    assert len(sfi_sandbox.calls()) == 3  # not retried


@pytest.mark.sfi_sandbox(per_page=50)
def test_a_failed_page_is_retried_on_its_own(sfi_sandbox: SandboxServer, no_real_backoff: FakeSleep) -> None:
    items = SfiHook().paginate("teams/list")
    assert len([next(items) for _ in range(120)]) == 120  # into page 3
    sfi_sandbox.inject("5xx")
    assert len(list(items)) == 401 - 120
    assert [c.status for c in sfi_sandbox.calls()] == [200] * 3 + [500] + [200] * 6
    assert len(no_real_backoff.waits) == 1


def test_a_page_that_is_not_the_one_asked_for(sfi_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import airflow_sfi.hooks.sfi as module

    real = module.parse_envelope

    def first_page_again(status: int, body: bytes, headers: Any, **kwargs: Any) -> Envelope:
        envelope = real(status, body, headers, **kwargs)
        assert envelope.pagination is not None
        return dataclasses.replace(envelope, pagination=dataclasses.replace(envelope.pagination, page=1))

    monkeypatch.setattr(module, "parse_envelope", first_page_again)
    pages = SfiHook().pages("teams/list")
    next(pages)
    with pytest.raises(SfiResponseError, match=r"^teams/list page 2 of 17: SFI API answered HTTP 200 with page 1"):
        next(pages)


@pytest.mark.sfi_sandbox(rate_limit=3)
def test_the_quota_running_out_mid_pagination(sfi_sandbox: SandboxServer) -> None:
    hook = SfiHook()
    pages = hook.pages("teams/list")
    assert [next(pages).rate_limit.remaining for _ in range(3)] == [2, 1, 0]
    with pytest.raises(SfiRateLimitError) as caught:
        next(pages)
    assert caught.value.reset_at is not None and hook.last_rate_limit is not None
    assert hook.last_rate_limit.remaining == 0 and len(sfi_sandbox.calls()) == 4  # the hour's wait is not slept


def test_the_typed_methods(monkeypatch: pytest.MonkeyPatch, sfi_sandbox: SandboxServer) -> None:
    hook = use(monkeypatch, sfi_sandbox.connection("sandbox-key-ultra"))
    match = hook.match(MATCHES[0])
    assert match["id"] == MATCHES[0] and any(e["type"] == "goal" for e in match["events"])
    assert hook.match(MATCHES[0], full=True)["id"] == MATCHES[0]
    assert isinstance(hook.live(), list) and isinstance(hook.live(full=True), list)
    championships = list(hook.championships())
    assert len(championships) == 321 and championships[0]["id"] == LEAGUES[0]
    assert hook.championship(LEAGUES[0])["seasons"]
    teams = hook.teams(c=hook.teams().__next__()["country"]["id"])
    team = next(teams)
    assert hook.team(team["id"])["name"] == team["name"]
    assert [c.endpoint for c in sfi_sandbox.calls()][:4] == [
        "matches/view/basic",
        "matches/view/full",
        "live/basic",
        "live/full",
    ]


def test_one_item_expected(sfi_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = SfiHook()
    monkeypatch.setattr(hook, "get", lambda *a, **k: Envelope(200, [], None, RateLimit(None, None, None)))
    with pytest.raises(SfiResponseError, match="HTTP 200 with 0 results instead of one match"):
        hook.match(MATCHES[0])
    monkeypatch.setattr(hook, "get", lambda *a, **k: Envelope(200, ["x"], None, RateLimit(None, None, None)))
    with pytest.raises(SfiResponseError, match="with a result that is not an object instead of one team"):
        hook.team("t")


def test_get_ws_new_masks_the_token_it_returns(sfi_sandbox: SandboxServer) -> None:
    (item,) = SfiHook().get("ws/new").result
    assert redact(f"{item['token']} {item['server']}") == "*** ***"


def test_no_data_call_log_carries_the_key(
    monkeypatch: pytest.MonkeyPatch, sfi_sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    key, suspended = "sandbox-key-ultra", "sandbox-key-suspended"
    hook = use(monkeypatch, sfi_sandbox.connection(key))
    sfi_sandbox.inject("drop")
    with caplog.at_level(logging.DEBUG):
        assert len(list(hook.paginate("countries/list"))) == 25
        with pytest.raises(SfiAuthError) as caught:
            use(monkeypatch, sfi_sandbox.connection(suspended), "other").get("live/basic")
    said = "\n".join(record.getMessage() for record in caplog.records)
    assert "GET /v1/countries/list/?t=***&p=1" in said
    assert key not in said and suspended not in said + everything_said(caught.value)
    assert key not in repr(hook) + repr(hook._transport)


# SfiAsyncHook


class FakeAsyncSleep:
    """The async hook's retry sleep: records each wait and moves the sandbox's clock (SLEEP's) instead."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        SLEEP.offset += seconds


@pytest.fixture
def async_sleep(monkeypatch: pytest.MonkeyPatch) -> FakeAsyncSleep:
    sleep = FakeAsyncSleep()
    monkeypatch.setattr(SfiAsyncHook, "retry_sleep", sleep)
    return sleep


@pytest.mark.parametrize(
    ("auth_type", "path"), [("direct", "/v1/matches/view/basic/"), ("rapidapi", "/matches/view/basic/")]
)
def test_async_get_in_both_modes(
    monkeypatch: pytest.MonkeyPatch, sfi_sandbox: SandboxServer, auth_type: str, path: str
) -> None:
    use_connection(monkeypatch, sfi_sandbox.connection("sandbox-key-pro", auth_type))
    hook = SfiAsyncHook()
    envelope = asyncio.run(hook.get("matches/view/basic", i=MATCHES[2]))
    assert envelope.result[0]["id"] == MATCHES[2] and envelope.pagination is None
    assert hook.last_rate_limit == envelope.rate_limit and envelope.rate_limit.limit == 1000
    (call,) = sfi_sandbox.calls()
    assert (call.path, call.auth_type, call.key, call.status) == (path, auth_type, "sandbox-key-pro", 200)


@pytest.mark.sfi_sandbox(per_page=50)
def test_async_paginate_and_pages_share_one_client(sfi_sandbox: SandboxServer) -> None:
    async def run() -> tuple[list[str], list[int]]:
        async with SfiAsyncHook() as hook:
            ids = [team["id"] async for team in hook.paginate("teams/list")]
            sizes = [len(envelope.result) async for envelope in hook.pages("countries/list")]
            await hook.get("live/basic")
        return ids, sizes

    ids, sizes = asyncio.run(run())
    assert len(ids) == len(set(ids)) == 401 and sizes == [25]
    calls = sfi_sandbox.calls()
    assert len(calls) == 11 and len({c.client_port for c in calls}) == 1  # one keep-alive connection


@pytest.mark.sfi_sandbox(per_page=50)
def test_async_malformed_page_halfway_and_retries(sfi_sandbox: SandboxServer, async_sleep: FakeAsyncSleep) -> None:
    async def run() -> list[int]:
        sizes = []
        with pytest.raises(SfiResponseError, match=r"^teams/list page 4 of 9: SFI API answered HTTP 200 with a body"):
            async for envelope in SfiAsyncHook().pages("teams/list"):
                sizes.append(len(envelope.result))
                if len(sizes) == 2:
                    sfi_sandbox.inject("5xx", status=503)
                    sfi_sandbox.inject("drop")
                if len(sizes) == 3:
                    sfi_sandbox.inject("malformed")
        return sizes

    assert asyncio.run(run()) == [50, 50, 50]
    assert [c.status for c in sfi_sandbox.calls()] == [200, 200, 503, None, 200, 200]
    first, second = async_sleep.waits
    assert 0.5 <= first <= 1.0 and 1.0 <= second <= 1.5  # the sync hook's backoff


def test_async_mistakes_are_raised_before_any_call(monkeypatch: pytest.MonkeyPatch, sfi_sandbox: SandboxServer) -> None:
    hook = SfiAsyncHook()
    with pytest.raises(SfiConfigError, match="did you mean 'teams/list'"):
        asyncio.run(hook.get("team/list"))
    with pytest.raises(SfiConfigError, match="p is set by the pagination itself"):
        hook.paginate("teams/list", p=3)
    with pytest.raises(SfiConfigError, match="day '20231301' is not a real date"):
        hook.pages("matches/day/basic", d="20231301")
    use_connection(monkeypatch, sfi_sandbox.connection("sandbox-key-pro", "rapidapi"))

    async def status() -> None:
        async for _ in SfiAsyncHook().paginate("token/status"):
            pass

    with pytest.raises(SfiConfigError, match="direct API only"):
        asyncio.run(status())
    assert sfi_sandbox.calls() == []


@pytest.mark.sfi_sandbox(rate_limit=1, retry_after=True, rate_window=2, clock=SLEEP.clock)
def test_async_short_retry_after_is_waited_out(sfi_sandbox: SandboxServer, async_sleep: FakeAsyncSleep) -> None:
    async def run() -> None:
        async with SfiAsyncHook() as hook:
            await hook.get("live/basic")
            await hook.get("live/basic")

    # The first call takes the window's one request; the second's 429 asks for its 2 s, then passes.
    asyncio.run(run())
    assert async_sleep.waits == [2.0] and [c.status for c in sfi_sandbox.calls()] == [200, 429, 200]


def test_async_errors_are_typed(monkeypatch: pytest.MonkeyPatch, sfi_sandbox: SandboxServer) -> None:
    use_connection(monkeypatch, sfi_sandbox.connection("sandbox-key-basic"))
    with pytest.raises(SfiAuthError) as caught:
        asyncio.run(SfiAsyncHook().get("matches/view/basic", i=MATCHES[0]))
    assert (caught.value.http_status, caught.value.code) == (401, 4)
    assert "sandbox-key-basic" not in everything_said(caught.value)


def test_async_connection_refused_names_the_host_but_not_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    secret = "refused-api-token-43"
    conn = {"conn_type": "sfi", "host": f"http://127.0.0.1:{port}", "password": secret, "extra": {"max_attempts": 1}}
    use_connection(monkeypatch, conn)
    with pytest.raises(SfiTransportError, match=f"127.0.0.1:{port}: connection refused") as caught:
        asyncio.run(SfiAsyncHook().get("live/basic"))
    assert caught.value.__context__ is None and caught.value.__cause__ is None
    assert secret not in everything_said(caught.value)


def test_async_stall_fails_within_the_timeout(monkeypatch: pytest.MonkeyPatch, sfi_sandbox: SandboxServer) -> None:
    use_connection(monkeypatch, sfi_sandbox.connection(timeout=0.3, max_attempts=1))
    sfi_sandbox.inject("slow", delay=3)
    started = time.monotonic()
    with pytest.raises(SfiTransportError, match=r"no response within the read timeout of 0.3 s"):
        asyncio.run(SfiAsyncHook().get("live/basic"))
    assert time.monotonic() - started < 2.5


def test_async_hook_reads_the_connection_off_the_loop(
    monkeypatch: pytest.MonkeyPatch, sfi_sandbox: SandboxServer
) -> None:
    threads = []
    real = SfiAsyncHook.get_connection

    def recording(conn_id: str) -> Any:
        threads.append(threading.get_ident())
        return real(conn_id)

    monkeypatch.setattr(SfiAsyncHook, "get_connection", staticmethod(recording))

    async def run() -> int:
        hook = SfiAsyncHook()
        await hook.get("live/basic")
        await hook.get("live/basic")
        return threading.get_ident()

    loop_thread = asyncio.run(run())
    assert len(threads) == 1 and threads[0] != loop_thread  # read once, in a thread


def test_async_no_log_record_carries_the_key(
    monkeypatch: pytest.MonkeyPatch,
    sfi_sandbox: SandboxServer,
    caplog: pytest.LogCaptureFixture,
    async_sleep: FakeAsyncSleep,
) -> None:
    key = "sandbox-key-mega"
    use_connection(monkeypatch, sfi_sandbox.connection(key))
    sfi_sandbox.inject("5xx")

    async def run() -> list[Any]:
        async with SfiAsyncHook() as hook:
            return [item async for item in hook.paginate("countries/list")] + (await hook.get("ws/new")).result

    # Airflow keeps httpx's logger at WARNING; its request lines (INFO) appear once a user lowers it.
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="httpx"):
        items = asyncio.run(run())
    token = items[-1]["token"]
    said = "\n".join(record.getMessage() for record in caplog.records)
    assert "/v1/countries/list/?t=***&p=1" in said  # httpx's request line, its key masked
    assert len(async_sleep.waits) == 1  # the 5xx was retried
    assert key not in said and token not in said
    assert redact(token) == "***"


def test_the_async_hook_is_a_public_name() -> None:
    import airflow_sfi

    assert airflow_sfi.SfiAsyncHook is SfiAsyncHook and "SfiAsyncHook" in airflow_sfi.__all__
