"""The sandbox's HTTP face (airflow_sfi.sandbox.server), its pytest fixture and its command line."""

from __future__ import annotations

import json
import time

import pytest
import requests

from airflow_sfi.sandbox import SandboxServer, TokenRecord

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
RAPID_HOST = "soccer-football-info.p.rapidapi.com"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def test_http_faults_and_request_log() -> None:
    clock = Clock()
    with SandboxServer(ttl=30, clock=clock) as api:
        url, params = f"{api.url}/v1/ws/new/", {"t": "sandbox-key-pro"}
        session = requests.Session()
        api.inject("5xx")
        api.inject("html")
        api.inject("malformed")
        api.inject("drop")
        api.inject("slow", delay=0.3)

        def get() -> requests.Response:
            clock.now += 1  # each request at its own moment of the sandbox clock
            return session.get(url, params=params, timeout=5)

        five = get()
        assert (five.status_code, five.json()["errors"]) == (500, [{"code": 0, "message": "Internal Server Error"}])
        html = get()
        assert (html.status_code, html.headers["Content-Type"].split(";")[0]) == (502, "text/html")
        malformed = get()
        assert malformed.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(malformed.text)
        with pytest.raises(requests.ConnectionError):
            get()
        started = time.monotonic()
        slow = get()
        assert time.monotonic() - started >= 0.3
        assert slow.json()["result"][0]["is_new"] is True
        ok = get()
        assert (ok.status_code, ok.headers["X-Rate-Limit-Remaining"]) == (200, "998")
        # The slow request issued the token at T0 + 5 (fake clock); it comes back unchanged.
        assert ok.json()["result"][0] == {**slow.json()["result"][0], "is_new": False}
        assert ok.json()["result"][0]["expires_at"] == "2023-11-14 22:13:55"
        log = api.calls("ws/new")
        assert [r.fault for r in log] == ["5xx", "html", "malformed", "drop", "slow", None]
        assert [r.status for r in log] == [500, 502, 200, None, 200, 200]
        assert [r.at for r in log] == [T0 + n for n in range(1, 7)]
        assert {(r.method, r.path, r.auth_type, r.key) for r in log} == {
            ("GET", "/v1/ws/new/", "direct", "sandbox-key-pro")
        }
        assert all(0 < r.client_port != api.port for r in log)
    with pytest.raises(requests.ConnectionError):
        requests.get(url, params=params, timeout=2)


def test_renew_over_http_and_the_token_history() -> None:
    clock = Clock()
    with SandboxServer(ttl=60, clock=clock) as api:
        session = requests.Session()
        rapid = {"x-rapidapi-host": RAPID_HOST, "x-rapidapi-key": "sandbox-key-ultra"}
        refused = session.get(f"{api.url}/ws/renew/", headers=rapid, timeout=5)
        assert (refused.status_code, refused.json()["errors"]) == (
            400,
            [{"code": 7, "message": "No active token to renew"}],
        )
        first = session.get(f"{api.url}/v1/ws/new/", params={"t": "sandbox-key-pro"}, timeout=5).json()["result"][0]
        clock.now = T0 + 20
        renewed = session.get(f"{api.url}/v1/ws/renew/", params={"t": "sandbox-key-pro"}, timeout=5).json()
        assert renewed["result"][0] == {**first, "is_new": False, "expires_at": "2023-11-14 22:14:40"}
        assert api.tokens() == [TokenRecord("sandbox-key-pro", first["token"], T0, T0 + 80, (T0 + 20,))]
        assert (api.valid_at(first["token"], T0 + 79), api.valid_at(first["token"], T0 + 80)) == (True, False)
        clock.now = T0 + 30
        api.expire_tokens()
        assert api.valid_at(first["token"], T0 + 30) is False and api.tokens()[0].revoked_at == T0 + 30
        assert api.issued_tokens == [first["token"]]
        assert [(c.endpoint, c.auth_type, c.status) for c in api.calls()] == [
            ("ws/renew", "rapidapi", 400),
            ("ws/new", "direct", 200),
            ("ws/renew", "direct", 200),
        ]


def test_server_refuses_bad_options_before_binding() -> None:
    with pytest.raises(ValueError, match="renew"):
        SandboxServer(renew="sometimes")
    with pytest.raises(RuntimeError, match="not running"):
        _ = SandboxServer().port


def test_ws_counters_are_the_feeds_and_start_empty() -> None:
    api = SandboxServer(max_connections=1, clock=Clock())
    counters = [api.ws_limit_refusals(), api.ws_errors_sent(), api.ws_socket_timeline(), api.ws_max_sockets()]
    assert counters == [0, {}, [], 0]
    pro = api.sandbox.answer("/v1/ws/new/", {"t": ["sandbox-key-pro"]}, {})[0]
    assert pro is not None
    token = json.loads(pro.body)["result"][0]["token"]
    sent: list[str | bytes] = []
    api.feed.connect(token, sent.append, lambda code, reason: None)
    api.feed.connect(token, sent.append, lambda code, reason: None)
    assert (api.ws_limit_refusals(), api.ws_errors_sent()) == (1, {"CONNECTION_LIMIT": 1})
    assert api.ws_socket_timeline() == [(T0, token[:4] + "…", 1)]
    assert (api.ws_max_sockets(), api.ws_max_sockets(token)) == (1, 1)
