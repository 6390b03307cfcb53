"""The sandbox's behaviour (fake clock) and its HTTP face (real socket)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import requests

from airflow_sfi.sandbox import PLANS, Sandbox, SandboxKey, SandboxServer

RAPID = {"x-rapidapi-host": "soccer-football-info.p.rapidapi.com"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def direct(sandbox: Sandbox, key: str | None = "sandbox-key-pro", path: str = "/v1/ws/new/") -> tuple[int, dict]:
    answer, auth, _, _ = sandbox.answer(path, {"t": [key]} if key else {}, {})
    assert auth == "direct"
    return answer.status, json.loads(answer.body)


def rapid(sandbox: Sandbox, key: str | None, path: str = "/ws/new/", host: str = RAPID["x-rapidapi-host"]):
    headers = {"x-rapidapi-host": host} | ({"x-rapidapi-key": key} if key else {})
    answer, auth, _, _ = sandbox.answer(path, {}, headers)
    assert auth == "rapidapi"
    return answer.status, json.loads(answer.body), answer.headers


def test_active_token_is_returned_again_until_it_expires() -> None:
    clock = Clock()
    sandbox = Sandbox(ttl=60, clock=clock)
    _, first = direct(sandbox)
    clock.now += 59
    _, again = direct(sandbox)
    clock.now += 2
    _, renewed = direct(sandbox)
    assert first["result"][0]["is_new"] is True
    assert again["result"][0] == {**first["result"][0], "is_new": False}
    assert renewed["result"][0]["is_new"] is True
    assert renewed["result"][0]["token"] != first["result"][0]["token"]
    assert first["result"][0]["expires_at"] == time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(clock.now - 61 + 60))


def test_tokens_are_per_key_and_server_embeds_token() -> None:
    sandbox = Sandbox()
    _, pro = direct(sandbox, "sandbox-key-pro")
    _, mega = direct(sandbox, "sandbox-key-mega")
    assert pro["result"][0]["token"] != mega["result"][0]["token"]
    assert pro["result"][0]["server"].endswith("?token=" + pro["result"][0]["token"])


@pytest.mark.parametrize("plan", ["PRO", "ULTRA", "MEGA"])
def test_channels_follow_the_plan(plan: str) -> None:
    sandbox = Sandbox(keys={"k" * 10: SandboxKey(plan)})
    _, body = direct(sandbox, "k" * 10)
    assert body["result"][0]["allowed_channels"] == list(PLANS[plan][0])


def test_renew_extends_the_active_token() -> None:
    clock = Clock()
    sandbox = Sandbox(ttl=60, clock=clock)
    _, first = direct(sandbox)
    clock.now += 30
    _, renewed = direct(sandbox, path="/v1/ws/renew/")
    assert renewed["result"][0]["token"] == first["result"][0]["token"]
    assert renewed["result"][0]["is_new"] is False
    assert renewed["result"][0]["expires_at"] > first["result"][0]["expires_at"]


@pytest.mark.parametrize(
    ("key", "path", "status", "code", "message"),
    [
        (None, "/v1/ws/new/", 400, 1, "Missing t param"),
        ("wrong-key-123", "/v1/ws/new/", 401, 2, "Token is invalid"),
        ("sandbox-key-suspended", "/v1/ws/new/", 401, 3, "Token is suspended"),
        ("sandbox-key-basic", "/v1/ws/new/", 401, 4, "Token does not have permission"),
        ("sandbox-key-wrong-ip", "/v1/ws/new/", 401, 5, "Token IP is invalid"),
        ("sandbox-key-pro", "/v1/ws/old/", 404, 6, "Not Found"),
        ("sandbox-key-pro", "/v1/ws/new", 404, 6, "Not Found"),
    ],
)
def test_direct_errors_are_documented_envelopes(key, path, status, code, message) -> None:
    got_status, body = direct(Sandbox(), key, path)
    assert (got_status, body["status"]) == (status, status)
    assert body["errors"] == [{"code": code, "message": message}]
    assert body["result"] == []


def test_rapidapi_path_rule_and_proxy_messages() -> None:
    sandbox = Sandbox()
    assert rapid(sandbox, "sandbox-key-pro")[0] == 200
    assert rapid(sandbox, "sandbox-key-pro", host="soccerfootballinfo.rapidapi.com")[0] == 200
    # RapidAPI drops the /v1 prefix: with it, the path does not exist there; without it, not on the direct API.
    assert rapid(sandbox, "sandbox-key-pro", path="/v1/ws/new/")[:2] == (
        404,
        {"message": "Endpoint '/v1/ws/new/' does not exist"},
    )
    assert direct(sandbox, path="/ws/new/") == (404, direct(sandbox, path="/v1/nope/")[1])
    assert rapid(sandbox, None)[:2] == (401, {"message": rapid(sandbox, "nope-nope")[1]["message"]})
    assert rapid(sandbox, "sandbox-key-pro", host="other.example")[:2] == (
        403,
        {"message": "You are not subscribed to this API."},
    )
    assert rapid(sandbox, "sandbox-key-pro", path="/ws/nope/")[0] == 404
    status, body, _ = rapid(sandbox, "sandbox-key-suspended")
    assert (status, body["errors"][0]["code"]) == (401, 3)


def test_rate_limit_direct_and_rapidapi() -> None:
    clock = Clock()
    sandbox = Sandbox(rate_limit=2, rate_window=3600, clock=clock)
    statuses = [sandbox.answer("/v1/ws/new/", {"t": ["sandbox-key-pro"]}, {})[0] for _ in range(3)]
    assert [a.status for a in statuses] == [200, 200, 429]
    assert [a.headers["X-Rate-Limit-Remaining"] for a in statuses] == ["1", "0", "0"]
    assert json.loads(statuses[2].body)["errors"] == [{"code": 7, "message": "Too many requests"}]
    assert statuses[2].headers["X-Rate-Limit-Reset"] == "3600"
    status, body, headers = rapid(sandbox, "sandbox-key-pro")
    assert status == 429 and set(body) == {"message"} and headers["x-ratelimit-requests-remaining"] == "0"
    clock.now += 3600
    assert direct(sandbox)[0] == 200


def test_rate_limit_epoch_reset_and_retry_after() -> None:
    clock = Clock()
    sandbox = Sandbox(rate_limit=0, reset_style="epoch", retry_after=True, clock=clock)
    answer = sandbox.answer("/v1/ws/new/", {"t": ["sandbox-key-pro"]}, {})[0]
    assert answer.status == 429
    assert answer.headers["X-Rate-Limit-Reset"] == str(int(clock.now) + 3600)
    assert answer.headers["Retry-After"] == "3600"


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="plan"):
        SandboxKey("GOLD")
    with pytest.raises(ValueError, match="state"):
        SandboxKey("PRO", "banned")
    with pytest.raises(ValueError, match="fault"):
        Sandbox().inject("explode")
    with pytest.raises(ValueError, match="ttl"):
        Sandbox(ttl=0)


def test_http_faults_and_request_log() -> None:
    with SandboxServer(ttl=30) as api:
        url, params = f"{api.url}/v1/ws/new/", {"t": "sandbox-key-pro"}
        session = requests.Session()
        api.inject("5xx")
        api.inject("html")
        api.inject("malformed")
        api.inject("drop")
        api.inject("slow", delay=0.3)
        assert session.get(url, params=params).status_code == 500
        html = session.get(url, params=params)
        assert (html.status_code, html.headers["Content-Type"].split(";")[0]) == (502, "text/html")
        with pytest.raises(json.JSONDecodeError):
            json.loads(session.get(url, params=params).text)
        with pytest.raises(requests.ConnectionError):
            session.get(url, params=params)
        started = time.monotonic()
        assert session.get(url, params=params).json()["status"] == 200
        assert time.monotonic() - started >= 0.3
        assert session.get(url, params=params).status_code == 200
        log = api.calls("ws/new")
        assert [r.fault for r in log] == ["5xx", "html", "malformed", "drop", "slow", None]
        assert [r.status for r in log] == [500, 502, 200, None, 200, 200]
        assert {r.key for r in log} == {"sandbox-key-pro"}
    with pytest.raises(requests.ConnectionError):
        requests.get(url, params=params, timeout=2)


def test_command_line_server_answers_and_stops() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_sfi.sandbox", "--port", "0", "--ttl", "5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "Sandbox API on http://127.0.0.1:" in first
        base = first.split(" on ")[1].split(" ")[0]
        body = requests.get(f"{base}/v1/ws/new/", params={"t": "sandbox-key-mega"}, timeout=5).json()
        assert body["result"][0]["is_new"] is True
    finally:
        proc.terminate()
        rest = proc.communicate(timeout=10)[0]
    assert "GET /v1/ws/new/ 200" in rest
    assert not any(
        "sandbox-key-mega" in line for line in rest.splitlines() if "GET" in line
    )  # the path only, never the query
