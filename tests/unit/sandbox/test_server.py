"""The sandbox's HTTP face (airflow_sfi.sandbox.server), its pytest fixture and its command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import requests

from airflow_sfi.sandbox import SandboxServer, TokenRecord
from airflow_sfi.sandbox.__main__ import main

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


@pytest.mark.sfi_sandbox(renew="absent", ttl=60)
def test_renew_absent_through_the_fixture_marker(sfi_sandbox: SandboxServer) -> None:
    assert json.loads(os.environ["AIRFLOW_CONN_SFI_DEFAULT"])["host"] == sfi_sandbox.url
    params = {"t": "sandbox-key-pro"}
    assert requests.get(f"{sfi_sandbox.url}/v1/ws/new/", params=params, timeout=5).status_code == 200
    direct = requests.get(f"{sfi_sandbox.url}/v1/ws/renew/", params=params, timeout=5)
    assert (direct.status_code, direct.json()) == (
        404,
        {"status": 404, "errors": [{"code": 6, "message": "Not Found"}], "pagination": [], "result": []},
    )
    headers = {"x-rapidapi-host": RAPID_HOST, "x-rapidapi-key": "sandbox-key-pro"}
    rapid = requests.get(f"{sfi_sandbox.url}/ws/renew/", headers=headers, timeout=5)
    assert (rapid.status_code, rapid.json()) == (404, {"message": "Endpoint '/ws/renew/' does not exist"})
    assert sfi_sandbox.tokens()[0].renewed_at == ()


def test_server_refuses_bad_options_before_binding() -> None:
    with pytest.raises(ValueError, match="renew"):
        SandboxServer(renew="sometimes")
    with pytest.raises(RuntimeError, match="not running"):
        _ = SandboxServer().port


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--renew", "sometimes"], "--renew: invalid choice: 'sometimes'"),
        (["--ttl", "0"], "--ttl must be positive"),
    ],
)
def test_command_line_refuses_bad_arguments(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_command_line_server_answers_and_stops() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_sfi.sandbox", "--port", "0", "--ttl", "5", "--renew", "absent"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("Sandbox API on http://127.0.0.1:")
        assert "(token TTL 5 s, ws/renew absent)" in first
        base = first.split(" on ")[1].split(" ")[0]
        params = {"t": "sandbox-key-mega"}
        body = requests.get(f"{base}/v1/ws/new/", params=params, timeout=5).json()
        assert body["result"][0]["is_new"] is True
        renew = requests.get(f"{base}/v1/ws/renew/", params=params, timeout=5)
        assert (renew.status_code, renew.json()["errors"]) == (404, [{"code": 6, "message": "Not Found"}])
    finally:
        proc.terminate()
        rest = proc.communicate(timeout=10)[0]
    assert "GET /v1/ws/new/ 200" in rest and "GET /v1/ws/renew/ 404" in rest
    assert not any(
        "sandbox-key-mega" in line for line in rest.splitlines() if "GET" in line
    )  # the path only, never the query


def test_gap_watcher_measures_how_long_the_published_token_was_dead() -> None:
    from airflow_sfi.sandbox import GapWatcher, Sandbox

    now = [1_000_000.0]
    sandbox = Sandbox(ttl=10, clock=lambda: now[0])
    published: list[str] = []
    watcher = GapWatcher(sandbox, lambda: published[-1] if published else None)

    def at(moment: float) -> None:
        now[0] = moment
        watcher.poll()

    at(1_000_000.0)  # nothing published yet: no gap
    sandbox.answer("/v1/ws/new/", {"t": ["sandbox-key-pro"]}, {})
    published.append(sandbox.tokens()[-1].token)
    at(1_000_005.0)
    at(1_000_010.5)  # expired at 1_000_010: a gap is open from here
    at(1_000_012.0)
    sandbox.answer("/v1/ws/new/", {"t": ["sandbox-key-pro"]}, {})
    published.append(sandbox.tokens()[-1].token)
    at(1_000_013.0)  # a valid token again: the gap was 2.5 s as polled
    at(1_000_030.0)  # the second one expired at 1_000_023
    watcher.stop()  # stopping closes the open gap at the clock's time
    assert watcher.gaps == 2 and watcher.polls == 6
    assert watcher.longest_gap == 2.5 and watcher.total_gap == 2.5 + 0.0
