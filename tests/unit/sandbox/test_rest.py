"""The sandbox's behaviour (airflow_sfi.sandbox.rest), on a fake clock and without a socket."""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import json
import math
import re
import time
from types import SimpleNamespace
from typing import Any

import pytest
import requests

from airflow_sfi.sandbox import (
    Feed,
    MatchScript,
    Sandbox,
    SandboxKey,
    SandboxServer,
    ScriptedEvent,
    TokenRecord,
    default_matches,
)
from airflow_sfi.sandbox.live import LEAGUES, MATCHES
from airflow_sfi.sandbox.rest import DATA_ENDPOINTS

RAPID_HOST = "soccer-football-info.p.rapidapi.com"
T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
ALL_CHANNELS = ["MAIN", "MAIN_REALTIME", "STATS", "ODDS", "STATS_REALTIME", "ODDS_REALTIME"]
NO_ACTIVE_TOKEN = {
    "status": 400,
    "errors": [{"code": 7, "message": "No active token to renew"}],
    "pagination": [],
    "result": [],
}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def direct(sandbox: Sandbox, key: str | None = "sandbox-key-pro", path: str = "/v1/ws/new/") -> tuple[int, dict]:
    answer, auth, _, _ = sandbox.answer(path, {"t": [key]} if key else {}, {})
    assert auth == "direct"
    assert answer is not None
    return answer.status, json.loads(answer.body)


def rapid(sandbox: Sandbox, key: str | None, path: str = "/ws/new/", host: str = RAPID_HOST):
    headers = {"x-rapidapi-host": host} | ({"x-rapidapi-key": key} if key else {})
    answer, auth, _, _ = sandbox.answer(path, {}, headers)
    assert auth == "rapidapi"
    assert answer is not None
    return answer.status, json.loads(answer.body), answer.headers


def ask(sandbox: Sandbox, path: str = "/v1/ws/new/", key: str = "sandbox-key-pro", *, fault: bool = False):
    """A direct request's whole answer (headers too); ``fault``: with the next injected fault."""
    answer = sandbox.answer(path, {"t": [key]}, {}, sandbox.next_fault() if fault else None)[0]
    assert answer is not None
    return answer


def item(body: dict) -> dict:
    assert (body["status"], body["errors"]) == (200, [])
    (result,) = body["result"]
    return result


def test_active_token_is_returned_again_until_it_expires() -> None:
    clock = Clock()
    sandbox = Sandbox(ttl=60, clock=clock)
    first = item(direct(sandbox)[1])
    clock.now = T0 + 59.9
    again = item(direct(sandbox)[1])
    clock.now = T0 + 60  # expires_at is a whole second and the token ends exactly then
    after = item(direct(sandbox)[1])
    assert first["is_new"] is True and first["expires_at"] == "2023-11-14 22:14:20"
    assert again == {**first, "is_new": False}
    assert after["is_new"] is True and after["token"] != first["token"]
    assert after["expires_at"] == "2023-11-14 22:15:20"


def test_expires_at_is_rounded_up_to_a_whole_second() -> None:
    clock = Clock()
    clock.now = T0 + 0.25
    assert item(direct(Sandbox(ttl=60, clock=clock))[1])["expires_at"] == "2023-11-14 22:14:21"


def test_tokens_are_per_key_and_server_embeds_token() -> None:
    sandbox = Sandbox()
    pro = item(direct(sandbox, "sandbox-key-pro")[1])
    mega = item(direct(sandbox, "sandbox-key-mega")[1])
    assert pro["token"] != mega["token"] and mega["is_new"] is True
    assert pro["server"] == "wss://ws-eu.soccerfootball.info/?token=" + pro["token"]
    assert len(pro["token"]) >= 20


@pytest.mark.parametrize(
    ("plan", "channels", "connections"),
    [("PRO", ["MAIN"], 2), ("ULTRA", ["MAIN", "STATS", "ODDS"], 5), ("MEGA", ALL_CHANNELS, 10)],
)
def test_channels_and_limits_follow_the_plan(plan: str, channels: list[str], connections: int) -> None:
    sandbox = Sandbox(keys={"k" * 10: SandboxKey(plan)})
    got = item(direct(sandbox, "k" * 10)[1])
    assert got["allowed_channels"] == channels
    assert (got["max_connections"], got["max_subscribe_per_connection"]) == (connections, connections)


@pytest.mark.parametrize(
    ("key", "path", "status", "code", "message"),
    [
        (None, "/v1/ws/new/", 400, 1, "Missing t param"),
        ("wrong-key-123", "/v1/ws/new/", 401, 2, "Token is invalid"),
        ("sandbox-key-suspended", "/v1/ws/new/", 401, 3, "Token is suspended"),
        ("sandbox-key-basic", "/v1/ws/new/", 401, 4, "Token does not have permission"),
        ("sandbox-key-basic", "/v1/ws/renew/", 401, 4, "Token does not have permission"),
        ("sandbox-key-wrong-ip", "/v1/ws/new/", 401, 5, "Token IP is invalid"),
        ("sandbox-key-pro", "/v1/ws/old/", 404, 6, "Not Found"),
        ("sandbox-key-pro", "/v1/ws/new", 404, 6, "Not Found"),
        ("sandbox-key-pro", "/ws/new/", 404, 6, "Not Found"),  # the direct API always has /v1
    ],
)
def test_direct_errors_are_documented_envelopes(key, path, status, code, message) -> None:
    assert direct(Sandbox(), key, path) == (
        status,
        {"status": status, "errors": [{"code": code, "message": message}], "pagination": [], "result": []},
    )


def test_rapidapi_path_rule_and_proxy_messages() -> None:
    sandbox = Sandbox()
    assert rapid(sandbox, "sandbox-key-pro")[0] == 200
    assert rapid(sandbox, "sandbox-key-pro", host="soccerfootballinfo.rapidapi.com")[0] == 200
    # RapidAPI drops the /v1 prefix: with it, the path does not exist there.
    assert rapid(sandbox, "sandbox-key-pro", path="/v1/ws/new/")[:2] == (
        404,
        {"message": "Endpoint '/v1/ws/new/' does not exist"},
    )
    assert rapid(sandbox, "sandbox-key-pro", path="/ws/nope/")[:2] == (
        404,
        {"message": "Endpoint '/ws/nope/' does not exist"},
    )
    invalid = {"message": "Invalid API key. Go to https://docs.rapidapi.com/docs/keys for more info."}
    assert rapid(sandbox, None)[:2] == (401, invalid)
    assert rapid(sandbox, "nope-nope")[:2] == (401, invalid)
    assert rapid(sandbox, "sandbox-key-pro", host="other.example")[:2] == (
        403,
        {"message": "You are not subscribed to this API."},
    )
    status, body, _ = rapid(sandbox, "sandbox-key-suspended")
    assert (status, body["errors"]) == (401, [{"code": 3, "message": "Token is suspended"}])
    # A request with only the key header is still a RapidAPI one (and lacks the host).
    answer, auth, _, _ = sandbox.answer("/ws/new/", {}, {"x-rapidapi-key": "sandbox-key-pro"})
    assert (auth, answer.status if answer else None) == ("rapidapi", 403)


def test_renew_extends_the_same_token() -> None:
    clock = Clock()
    sandbox = Sandbox(ttl=60, clock=clock)
    first = item(direct(sandbox)[1])
    clock.now = T0 + 30.2
    renewed = item(direct(sandbox, path="/v1/ws/renew/")[1])
    assert renewed == {**first, "is_new": False, "expires_at": "2023-11-14 22:14:51"}  # ceil(now + ttl)
    clock.now = T0 + 80  # past the first expiry: ws/new returns the renewed token
    assert item(direct(sandbox)[1]) == renewed
    clock.now = T0 + 91
    assert item(direct(sandbox)[1])["token"] != first["token"]


def test_renew_in_rapidapi_mode_extends_the_same_token() -> None:
    clock = Clock()
    sandbox = Sandbox(ttl=60, clock=clock)
    first = item(rapid(sandbox, "sandbox-key-ultra")[1])
    clock.now = T0 + 10
    status, body, _ = rapid(sandbox, "sandbox-key-ultra", path="/ws/renew/")
    assert status == 200 and item(body) == {**first, "is_new": False, "expires_at": "2023-11-14 22:14:30"}


@pytest.mark.parametrize("mode", ["direct", "rapidapi"])
def test_renew_without_any_token_is_refused(mode: str) -> None:
    sandbox = Sandbox()
    if mode == "direct":
        status, body = direct(sandbox, path="/v1/ws/renew/")
    else:
        status, body, _ = rapid(sandbox, "sandbox-key-pro", path="/ws/renew/")
    assert (status, body) == (400, NO_ACTIVE_TOKEN)
    assert sandbox.tokens() == [] and sandbox.issued_tokens == []


def test_renew_after_expiry_or_expire_tokens_is_refused_and_ws_new_issues_again() -> None:
    clock = Clock()
    sandbox = Sandbox(ttl=60, clock=clock)
    first = item(direct(sandbox)[1])
    clock.now = T0 + 60
    assert direct(sandbox, path="/v1/ws/renew/") == (400, NO_ACTIVE_TOKEN)
    second = item(direct(sandbox)[1])
    assert second["is_new"] is True and second["token"] != first["token"]
    clock.now = T0 + 70
    sandbox.expire_tokens()
    assert direct(sandbox, path="/v1/ws/renew/") == (400, NO_ACTIVE_TOKEN)
    third = item(direct(sandbox)[1])
    assert third["is_new"] is True and third["token"] not in (first["token"], second["token"])
    assert [t.renewed_at for t in sandbox.tokens()] == [(), (), ()]


def test_renewals_count_against_the_rate_limit() -> None:
    sandbox = Sandbox(rate_limit=3, clock=Clock())
    answers = [ask(sandbox, path) for path in ["/v1/ws/new/", *["/v1/ws/renew/"] * 3]]
    assert [(a.status, a.headers["X-Rate-Limit-Remaining"]) for a in answers] == [
        (200, "2"),
        (200, "1"),
        (200, "0"),
        (429, "0"),
    ]
    # A refused renewal is counted too.
    sandbox = Sandbox(rate_limit=1, clock=Clock())
    assert direct(sandbox, path="/v1/ws/renew/")[0] == 400
    assert direct(sandbox)[0] == 429


def test_renew_absent_answers_as_an_unknown_path() -> None:
    clock = Clock()
    sandbox = Sandbox(ttl=60, renew="absent", clock=clock)
    first = item(direct(sandbox)[1])
    assert direct(sandbox, path="/v1/ws/renew/") == (
        404,
        {"status": 404, "errors": [{"code": 6, "message": "Not Found"}], "pagination": [], "result": []},
    )
    assert rapid(sandbox, "sandbox-key-pro", path="/ws/renew/")[:2] == (
        404,
        {"message": "Endpoint '/ws/renew/' does not exist"},
    )
    # A wrong RapidAPI key is refused by the proxy before it looks at the path.
    assert rapid(sandbox, "nope-nope", path="/ws/renew/")[0] == 401
    (record,) = sandbox.tokens()
    assert (record.expires_at, record.renewed_at) == (T0 + 60, ())
    assert item(direct(sandbox)[1]) == {**first, "is_new": False}
    # Logged as any unknown path: no endpoint.
    sandbox.handle("GET", "/v1/ws/renew/", {"t": ["sandbox-key-pro"]}, {})
    assert [(r.path, r.endpoint, r.status) for r in sandbox.calls()] == [("/v1/ws/renew/", None, 404)]


def test_token_history_and_valid_at() -> None:
    clock = Clock()
    sandbox = Sandbox(ttl=60, clock=clock)
    first = item(direct(sandbox)[1])["token"]
    assert sandbox.tokens() == [TokenRecord("sandbox-key-pro", first, T0, T0 + 60)]
    assert [sandbox.valid_at(first, T0 + d) for d in (-0.001, 0, 59.999, 60)] == [False, True, True, False]

    clock.now = T0 + 30.5
    direct(sandbox, path="/v1/ws/renew/")
    clock.now = T0 + 45
    direct(sandbox, path="/v1/ws/renew/")
    assert sandbox.tokens() == [TokenRecord("sandbox-key-pro", first, T0, T0 + 105, (T0 + 30.5, T0 + 45))]
    assert [sandbox.valid_at(first, T0 + d) for d in (10, 60, 104.9, 105)] == [True, True, True, False]

    clock.now = T0 + 50
    sandbox.expire_tokens()
    (revoked,) = sandbox.tokens()
    assert (revoked.revoked_at, revoked.expires_at) == (T0 + 50, T0 + 105)
    assert [sandbox.valid_at(first, T0 + d) for d in (10, 49.9, 50, 60)] == [True, True, False, False]

    clock.now = T0 + 55
    second = item(direct(sandbox)[1])["token"]
    clock.now = T0 + 56
    mega = item(direct(sandbox, "sandbox-key-mega")[1])["token"]
    assert [(t.key, t.token, t.issued_at) for t in sandbox.tokens()] == [
        ("sandbox-key-pro", first, T0),
        ("sandbox-key-pro", second, T0 + 55),
        ("sandbox-key-mega", mega, T0 + 56),
    ]
    assert sandbox.issued_tokens == [first, second, mega]
    assert (sandbox.valid_at(second, T0 + 55), sandbox.valid_at(second, T0 + 54.9)) == (True, False)
    assert sandbox.valid_at("never-issued", T0 + 55) is False


def test_expire_tokens_leaves_an_already_expired_token_unrevoked() -> None:
    clock = Clock()
    sandbox = Sandbox(ttl=60, clock=clock)
    direct(sandbox)
    clock.now = T0 + 61
    sandbox.expire_tokens()
    assert sandbox.tokens()[0].revoked_at is None


def test_tokens_is_a_copy_of_frozen_records_that_hide_secrets() -> None:
    sandbox = Sandbox(clock=Clock())
    token = item(direct(sandbox)[1])["token"]
    records = sandbox.tokens()
    records.clear()
    sandbox.issued_tokens.clear()
    (record,) = sandbox.tokens()
    assert sandbox.issued_tokens == [token]
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.expires_at = 0  # type: ignore[misc]
    assert token not in repr(record) and "sandbox-key-pro" not in repr(record)
    assert "issued_at=1700000000.0" in repr(record)


def test_handle_logs_each_request_at_the_sandbox_clock() -> None:
    clock = Clock()
    sandbox = Sandbox(clock=clock)
    clock.now = T0 + 5
    answer = sandbox.handle("GET", "/v1/ws/new/", {"t": ["sandbox-key-mega"]}, {}, client_port=4321)
    assert answer is not None and answer.status == 200
    sandbox.inject("drop")
    clock.now = T0 + 7
    assert sandbox.handle("GET", "/ws/new/", {}, {"x-rapidapi-key": "k"}, fault=sandbox.next_fault()) is None
    assert [dataclasses.astuple(r) for r in sandbox.calls()] == [
        (T0 + 5, "GET", "/v1/ws/new/", "direct", "ws/new", "sandbox-key-mega", 200, None, 4321),
        (T0 + 7, "GET", "/ws/new/", "rapidapi", "ws/new", "k", None, "drop", 0),
    ]
    assert [r.path for r in sandbox.calls(key="k")] == ["/ws/new/"]
    assert sandbox.calls("ws/renew") == []


@pytest.mark.parametrize(("kind", "status"), [("5xx", 500), ("5xx", 503), ("html", 502), ("html", 504)])
def test_faulted_requests_issue_no_token_and_are_not_counted(kind: str, status: int) -> None:
    sandbox = Sandbox(rate_limit=5, clock=Clock())
    sandbox.inject(kind, 2, status=None if status in (500, 502) else status)
    assert [ask(sandbox, fault=True).status for _ in range(2)] == [status, status]
    assert sandbox.issued_tokens == []
    assert ask(sandbox, fault=True).headers["X-Rate-Limit-Remaining"] == "4"


def test_rate_limit_direct_and_rapidapi() -> None:
    clock = Clock()
    sandbox = Sandbox(rate_limit=2, rate_window=3600, clock=clock)
    answers = [ask(sandbox) for _ in range(3)]
    assert [(a.status, a.headers["X-Rate-Limit-Remaining"]) for a in answers] == [(200, "1"), (200, "0"), (429, "0")]
    assert json.loads(answers[2].body)["errors"] == [{"code": 7, "message": "Too many requests"}]
    assert answers[2].headers["X-Rate-Limit-Reset"] == "3600"
    assert "Retry-After" not in answers[2].headers
    clock.now = T0 + 600
    status, body, headers = rapid(sandbox, "sandbox-key-pro")
    assert status == 429
    assert body == {"message": "You have exceeded the rate limit per hour for your plan by the API provider"}
    assert (headers["x-ratelimit-requests-remaining"], headers["x-ratelimit-requests-reset"]) == ("0", "3000")
    assert direct(sandbox, "sandbox-key-mega")[0] == 200  # per key
    clock.now = T0 + 3600
    assert direct(sandbox)[0] == 200


def test_rate_limit_fault_answers_429_once() -> None:
    sandbox = Sandbox(clock=Clock())
    sandbox.inject("rate_limit")
    assert ask(sandbox, fault=True).status == 429
    assert direct(sandbox)[0] == 200


def test_rate_limit_epoch_reset_and_retry_after() -> None:
    clock = Clock()
    clock.now = T0 + 0.5
    sandbox = Sandbox(rate_limit=0, reset_style="epoch", retry_after=True, clock=clock)
    answer = ask(sandbox)
    assert answer.status == 429
    assert (answer.headers["X-Rate-Limit-Reset"], answer.headers["Retry-After"]) == ("1700003601", "3600")


def test_throttle_fault_is_a_short_429_that_is_not_counted() -> None:
    sandbox = Sandbox(rate_limit=5, clock=Clock())
    sandbox.inject("throttle", delay=1.5)
    answer = ask(sandbox, fault=True)
    assert answer.status == 429
    assert json.loads(answer.body)["errors"] == [{"code": 7, "message": "Too many requests"}]
    assert (answer.headers["Retry-After"], answer.headers["X-Rate-Limit-Reset"]) == ("2", "2")
    assert ask(sandbox).headers["X-Rate-Limit-Remaining"] == "4"


def test_fault_rate_draws_seeded_faults_after_the_queued_ones() -> None:
    def draws(seed: int) -> list[str | None]:
        sandbox = Sandbox(fault_rate=0.1, fault_seed=seed, fault_delay=0.5, clock=Clock())
        sandbox.inject("huge")
        faults = [sandbox.next_fault() for _ in range(2001)]
        assert faults[0] is not None and faults[0].kind == "huge"
        assert {f.delay for f in faults[1:] if f is not None} == {0.5}
        return [None if f is None else f.kind for f in faults[1:]]

    kinds = draws(7)
    assert kinds == draws(7) and kinds != draws(8)
    drawn = [k for k in kinds if k is not None]
    assert 150 <= len(drawn) <= 250
    assert set(drawn) == {"5xx", "drop", "slow", "throttle"}
    assert Sandbox().next_fault() is None
    only = Sandbox(fault_rate=1, fault_kinds=["drop"])
    assert only.next_fault() is not None and only.fault_kinds == ("drop",)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: SandboxKey("GOLD"), "plan"),
        (lambda: SandboxKey("PRO", "banned"), "state"),
        (lambda: Sandbox().inject("explode"), "fault"),
        (lambda: Sandbox(ttl=0), "ttl"),
        (lambda: Sandbox(rate_limit=-1), "rate_limit"),
        (lambda: Sandbox(reset_style="minutes"), "reset_style"),
        (lambda: Sandbox(renew="replace"), "renew must be 'extend' or 'absent', got 'replace'"),
        (lambda: Sandbox(fault_rate=1.5), "fault_rate"),
        (lambda: Sandbox(fault_delay=-1), "fault_delay"),
        (lambda: Sandbox(fault_kinds=["explode"]), "fault_kinds"),
        (lambda: Sandbox(fault_kinds=[]), "fault_kinds"),
        (lambda: Sandbox(extra_matches=-1), "extra_matches"),
        (lambda: Sandbox(per_page=0), "per_page"),
        (lambda: Sandbox(rapidapi_limit=-1), "rapidapi_limit"),
        (lambda: Sandbox(match_day="2023-11-14"), "match_day"),
        (lambda: Sandbox(match_day="20231131"), "match_day"),
    ],
)
def test_bad_options_are_refused(make, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


# The data endpoints

TODAY = "20231114"  # T0's day: the default match day
SCRIPTED = {m.match_id: m for m in default_matches()}


def get(
    sandbox: Sandbox, endpoint: str, key: str = "sandbox-key-mega", **params: str
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """A direct request to a data endpoint: (HTTP status, body, headers)."""
    answer = sandbox.answer(f"/v1/{endpoint}/", {"t": [key], **{k: [v] for k, v in params.items()}}, {})[0]
    assert answer is not None
    return answer.status, json.loads(answer.body), answer.headers


def ok(sandbox: Sandbox, endpoint: str, key: str = "sandbox-key-mega", **params: str) -> dict[str, Any]:
    status, body, _ = get(sandbox, endpoint, key, **params)
    assert (status, body["status"], body["errors"]) == (200, 200, []), body
    return body


def every_page(sandbox: Sandbox, endpoint: str, key: str = "sandbox-key-pro", **params: str) -> list[dict[str, Any]]:
    first = ok(sandbox, endpoint, key, **params)
    (pagination,) = first["pagination"]
    pages = math.ceil(pagination["items"] / pagination["per_page"])
    items = list(first["result"])
    for page in range(2, pages + 1):
        items += ok(sandbox, endpoint, key, p=str(page), **params)["result"]
    assert len(items) == pagination["items"]
    return items


def ws_goals(script: MatchScript, upto: float = math.inf) -> list[dict[str, str]]:
    """The goals a match script plays on MAIN, as matches/view lists them (home is teamA)."""
    return [
        {"type": "goal", "timer": str(int(e.minute)), "team": {"home": "A", "away": "B"}[e.data["team"]]}
        for e in script.events
        if e.channel == "MAIN" and e.type == "goal" and e.minute <= upto and e.data
    ]


def final_score(script: MatchScript) -> list[int]:
    return next(e.data["score"] for e in script.events if e.type == "match_end" and e.data)


@pytest.mark.parametrize(("key", "per_page"), [("basic", 25), ("pro", 25), ("ultra", 50), ("mega", 100)])
def test_reference_lists_page_by_the_plan(key: str, per_page: int) -> None:
    sandbox = Sandbox(clock=Clock())
    first = ok(sandbox, "teams/list", f"sandbox-key-{key}")
    last_page = math.ceil(401 / per_page)
    last = ok(sandbox, "teams/list", f"sandbox-key-{key}", p=str(last_page))
    after = ok(sandbox, "teams/list", f"sandbox-key-{key}", p=str(last_page + 1))
    assert first["pagination"] == [{"page": 1, "per_page": per_page, "items": 401}]
    assert len(first["result"]) == per_page and last_page > 3
    assert last["pagination"] == [{"page": last_page, "per_page": per_page, "items": 401}]
    assert len(last["result"]) == 401 - (last_page - 1) * per_page
    assert (after["result"], after["pagination"][0]["items"]) == ([], 401)


def test_per_page_option_overrides_the_plan() -> None:
    body = ok(Sandbox(per_page=7), "players/list", "sandbox-key-basic", p="3")
    assert body["pagination"] == [{"page": 3, "per_page": 7, "items": 4411}] and len(body["result"]) == 7


def test_reference_lists_are_generated_the_same_every_time_with_16_hex_ids() -> None:
    sizes = {"stadiums": 401, "managers": 401, "referees": 337, "players": 4411, "teams": 401, "championships": 321}
    sandbox = Sandbox()
    for kind, size in sizes.items():
        items = every_page(sandbox, f"{kind}/list", "sandbox-key-mega")
        assert len(items) == size > 3 * 100
        assert all(re.fullmatch(r"[0-9a-f]{16}", i["id"]) for i in items)
        assert len({i["id"] for i in items}) == size
    teams = ok(sandbox, "teams/list")["result"]
    assert teams[0] == {
        "id": "6499066c2e126a89",
        "name": "Elbrihol FC",
        "country": {"id": "319b0e7036a2d04a", "name": "Argentina"},
        "stadium": {"id": "5333fdbff48cb4a4", "name": "Elbrihol Ground"},
        "manager": {"id": "7a0a9e7a010cef7a", "name": "Rafael Yaroskal"},
    }
    languages = ok(sandbox, "languages/list")["result"]
    assert {"id": "en_US", "name": "English"} in languages
    assert len(ok(sandbox, "countries/list")["result"]) == 25
    championships = ok(sandbox, "championships/list")["result"]
    assert [c["id"] for c in championships[:2]] == list(LEAGUES)


def test_reference_lists_filter_by_country() -> None:
    sandbox = Sandbox()
    italy = next(c for c in ok(sandbox, "countries/list")["result"] if c["name"] == "Italy")
    teams = every_page(sandbox, "teams/list", c=italy["id"])
    assert len(teams) == 16 and {t["country"]["id"] for t in teams} == {italy["id"]}
    assert ok(sandbox, "countries/list", c=italy["id"])["result"] == [italy]
    assert ok(sandbox, "teams/list", c="0" * 16)["pagination"] == [{"page": 1, "per_page": 100, "items": 0}]


def test_view_basic_is_the_match_the_feed_plays() -> None:
    sandbox = Sandbox(clock=Clock())
    for match_id, script in SCRIPTED.items():
        (match,) = ok(sandbox, "matches/view/basic", "sandbox-key-pro", i=match_id)["result"]
        assert (match["id"], match["championship"]["id"]) == (match_id, script.league_id)
        assert (match["date"], match["status"], match["timer"]) == ("2023-11-14 19:00:00", "ENDED", "90:00")
        assert [e for e in match["events"] if e["type"] == "goal"] == ws_goals(script)
        assert {e["type"] for e in match["events"]} <= {"goal", "yellow_card", "red_card"}
        assert [match["teamA"]["score"]["f"], match["teamB"]["score"]["f"]] == final_score(script)
        assert match["teamA"]["id"] != match["teamB"]["id"]
    (first,) = ok(sandbox, "matches/view/basic", i=MATCHES[0])["result"]
    assert (first["teamA"]["score"], first["teamB"]["score"]) == (
        {"f": 3, "1h": 1, "2h": 2, "o": None, "p": None},
        {"f": 2, "1h": 1, "2h": 1, "o": None, "p": None},
    )
    assert first["championship"] == {"id": LEAGUES[0], "name": "Sandbox Premier League", "s_name": "SPL"}
    # Its teams are in the reference lists.
    team = ok(sandbox, "teams/view", i=first["teamA"]["id"])["result"][0]
    assert (team["name"], len(team["players"])) == (first["teamA"]["name"], 11)


def test_day_basic_pages_through_a_busy_day_with_the_scripted_matches() -> None:
    sandbox = Sandbox(extra_matches=247, clock=Clock())
    body = ok(sandbox, "matches/day/basic", "sandbox-key-pro", d=TODAY)
    assert body["pagination"] == [{"page": 1, "per_page": 25, "items": 250}]
    last = ok(sandbox, "matches/day/basic", "sandbox-key-pro", d=TODAY, p="10")
    assert len(last["result"]) == 25
    assert ok(sandbox, "matches/day/basic", "sandbox-key-pro", d=TODAY, p="11")["result"] == []
    matches = every_page(sandbox, "matches/day/basic", d=TODAY)
    assert len({m["id"] for m in matches}) == 250
    assert [m["date"] for m in matches] == sorted(m["date"] for m in matches)
    assert all(m["date"].startswith("2023-11-14 ") for m in matches)
    by_id = {m["id"]: m for m in matches}
    for match_id, script in SCRIPTED.items():
        assert by_id[match_id]["championship"]["id"] == script.league_id
        assert [e for e in by_id[match_id]["events"] if e["type"] == "goal"] == ws_goals(script)
        assert by_id[match_id] == ok(sandbox, "matches/view/basic", i=match_id)["result"][0]
    # Another day has none; the extra matches are the same in every sandbox.
    assert ok(sandbox, "matches/day/basic", d="20231115")["pagination"][0]["items"] == 0
    again = every_page(Sandbox(extra_matches=247, clock=Clock()), "matches/day/basic", d=TODAY)
    assert [m["id"] for m in again] == list(by_id)


@pytest.mark.parametrize("day", ["20240102", datetime.date(2024, 1, 2)])
def test_match_day_option_moves_the_matches(day: str | datetime.date) -> None:
    sandbox = Sandbox(match_day=day, extra_matches=5, clock=Clock())
    assert ok(sandbox, "matches/day/basic", d=TODAY)["pagination"][0]["items"] == 0
    matches = ok(sandbox, "matches/day/basic", d="20240102")["result"]
    assert len(matches) == 8 and set(SCRIPTED) <= {m["id"] for m in matches}
    # A scripted match's status follows the feed, a generated one's the clock (T0 is before that day).
    statuses = {m["id"]: (m["date"][:11], m["status"]) for m in matches}
    assert {statuses[i] for i in SCRIPTED} == {("2024-01-02 ", "ENDED")}
    assert {v for i, v in statuses.items() if i not in SCRIPTED} == {("2024-01-02 ", "NOT STARTED")}


class FakeFeed:
    """What the sandbox reads of a Feed: its playbacks (each: matches, minute, running)."""

    def __init__(self, *playbacks: SimpleNamespace) -> None:
        self._playbacks = list(playbacks)

    def playbacks(self) -> list[SimpleNamespace]:
        return self._playbacks


def playing(minute: float | None, matches: tuple[MatchScript, ...] | None = None) -> SimpleNamespace:
    return SimpleNamespace(matches=matches or default_matches(), minute=minute, running=True)


def view(sandbox: Sandbox, match_id: str, endpoint: str = "matches/view/basic") -> dict[str, Any]:
    (match,) = ok(sandbox, endpoint, i=match_id)["result"]
    return match


def goals_of(match: dict[str, Any]) -> list[dict[str, str]]:
    return [e for e in match["events"] if e["type"] == "goal"]


def test_a_running_playback_puts_its_matches_in_play_with_the_goals_so_far() -> None:
    sandbox = Sandbox(clock=Clock())
    playback = playing(71)
    sandbox.attach(FakeFeed(playback))  # type: ignore[arg-type]
    for match_id, script in SCRIPTED.items():
        match = view(sandbox, match_id)
        assert (match["status"], match["timer"]) == ("IN PLAY", "71:00")
        assert goals_of(match) == ws_goals(script, 71)
        assert all(int(e["timer"]) <= 71 for e in match["events"])
    third = view(sandbox, MATCHES[2])
    assert [third["teamA"]["score"]["f"], third["teamB"]["score"]["f"]] == [1, 1]  # 88' not yet
    live = ok(sandbox, "live/basic", "sandbox-key-pro")
    assert live["pagination"] == []
    assert {m["id"] for m in live["result"]} == set(SCRIPTED)
    assert all(m["in_play"] is True and "events" not in m for m in live["result"])
    assert next(m for m in live["result"] if m["id"] == MATCHES[2])["teamB"]["score"]["f"] == 1

    playback.minute = None  # started, nothing emitted yet
    match = view(sandbox, MATCHES[0])
    assert (match["status"], match["timer"], match["events"]) == ("NOT STARTED", "", [])
    assert ok(sandbox, "live/basic")["result"] == []
    playback.minute = 90  # match_end was emitted
    assert (view(sandbox, MATCHES[0])["status"], ok(sandbox, "live/basic")["result"]) == ("ENDED", [])
    playback.minute, playback.running = 30, False  # stopped: every goal
    assert goals_of(view(sandbox, MATCHES[0])) == ws_goals(SCRIPTED[MATCHES[0]])


def test_the_matches_a_feed_plays_are_served_as_it_plays_them() -> None:
    sandbox = Sandbox(match_day=TODAY)
    feed = Feed(sandbox)  # a feed attaches itself to its sandbox
    match_id = "abcdef0123456789"
    goal = ScriptedEvent(1, "MAIN", "goal", data={"minute": 1, "team": "away", "score": [0, 1]})
    end = ScriptedEvent(90, "MAIN", "match_end")
    script = MatchScript(match_id, LEAGUES[1], (ScriptedEvent(0, "MAIN", "match_start"), goal, end))
    playback = feed.play([script], minute_seconds=0.03)
    deadline = time.monotonic() + 2
    while playback.minute != 1 and time.monotonic() < deadline:
        time.sleep(0.005)
    match = view(sandbox, match_id)
    assert (match["status"], goals_of(match)) == ("IN PLAY", [{"type": "goal", "timer": "1", "team": "B"}])
    assert match["championship"]["id"] == LEAGUES[1]
    assert [m["id"] for m in ok(sandbox, "live/basic")["result"]] == [match_id]
    # Stopped, its match stays served, ended with every goal.
    feed.stop_playing()
    match = view(sandbox, match_id)
    assert (match["status"], match["timer"], len(goals_of(match))) == ("ENDED", "90:00", 1)
    assert match_id in {m["id"] for m in ok(sandbox, "matches/day/basic", d=TODAY)["result"]}


def test_a_generated_match_follows_the_clock() -> None:
    clock = Clock()
    sandbox = Sandbox(match_day=TODAY, extra_matches=1, clock=clock)
    (extra,) = [m for m in ok(sandbox, "matches/day/basic", d=TODAY)["result"] if m["id"] not in SCRIPTED]
    kickoff = datetime.datetime.strptime(extra["date"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    seen = []
    for minutes in (-1, 30, 50, 75, 105):
        clock.now = kickoff.timestamp() + minutes * 60
        match = view(sandbox, extra["id"])
        live = [m["id"] for m in ok(sandbox, "live/basic")["result"]]
        seen.append((match["status"], match["timer"], live == [extra["id"]]))
        assert all(int(e["timer"]) <= minutes for e in match["events"])
    assert seen == [
        ("NOT STARTED", "", False),
        ("IN PLAY", "30:00", True),
        ("IN PLAY", "45:00", True),  # halftime
        ("IN PLAY", "60:00", True),
        ("ENDED", "90:00", False),
    ]


# Each data endpoint by the lowest plan that reaches it.
BY_PLAN = {
    "BASIC": [
        *[f"{kind}/list" for kind in ("countries", "languages", "stadiums", "managers", "referees", "players")],
        "teams/list",
        "championships/list",
        "token/status",
    ],
    "PRO": [
        *[f"{kind}/view" for kind in ("stadiums", "managers", "referees", "players", "teams", "championships")],
        "teams/history",
        "teams/versus",
        "matches/view/basic",
        "matches/day/basic",
        "matches/by/basic",
        "live/basic",
    ],
    "ULTRA": [
        "matches/view/full",
        "matches/view/progressive",
        "matches/day/full",
        "matches/by/full",
        "live/full",
        "matches/odds",
    ],
}
PLANS_IN_ORDER = ["BASIC", "PRO", "ULTRA", "MEGA"]


def valid_params(sandbox: Sandbox, endpoint: str) -> dict[str, str]:
    kind, _, action = endpoint.rpartition("/")
    if action == "view" and kind != "matches/view":
        return {"i": ok(sandbox, f"{kind}/list")["result"][-1]["id"]}
    match = view(sandbox, MATCHES[0])
    known: dict[str, dict[str, str]] = {
        "teams/history": {"i": match["teamA"]["id"]},
        "teams/versus": {"x": match["teamA"]["id"], "y": match["teamB"]["id"], "w": "1y"},
        "matches/day": {"d": TODAY, "p": "1"},
        "matches/by": {"c": LEAGUES[0]},
    }
    return known.get(endpoint, known.get(kind, {"i": MATCHES[0]} if kind.startswith("matches") else {}))


def test_each_endpoint_answers_the_plans_it_is_documented_for() -> None:
    sandbox = Sandbox(clock=Clock())
    refused = {"status": 401, "errors": [{"code": 4, "message": "Token does not have permission"}]}
    assert sorted(e for endpoints in BY_PLAN.values() for e in endpoints) == sorted(DATA_ENDPOINTS)
    for lowest, endpoints in BY_PLAN.items():
        for endpoint, plan in itertools.product(endpoints, PLANS_IN_ORDER):
            params = valid_params(sandbox, endpoint)
            status, body, headers = get(sandbox, endpoint, f"sandbox-key-{plan.lower()}", **params)
            if PLANS_IN_ORDER.index(plan) >= PLANS_IN_ORDER.index(lowest):
                assert (status, body["errors"]) == (200, []), (endpoint, plan, body)
            else:
                assert (status, {k: body[k] for k in refused}) == (401, refused), (endpoint, plan)
            assert "X-Rate-Limit-Remaining" in headers


def test_basic_variants_leave_out_the_odds_that_full_ones_carry() -> None:
    sandbox = Sandbox(clock=Clock(), extra_matches=3)
    script = SCRIPTED[MATCHES[0]]
    last_odds = [e.data for e in script.events if e.channel == "ODDS" and e.data][-1]
    basic, full = view(sandbox, MATCHES[0]), view(sandbox, MATCHES[0], "matches/view/full")
    assert "odds" not in basic and {k: v for k, v in full.items() if k != "odds"} == basic
    assert full["odds"]["live"]["1X2"] == {"1": last_odds["home"], "X": last_odds["draw"], "2": last_odds["away"]}
    day = ok(sandbox, "matches/day/full", d=TODAY)["result"]
    assert len(day) == 6 and all("odds" in m for m in day)
    sandbox.attach(FakeFeed(playing(20)))  # type: ignore[arg-type]
    assert all("odds" in m and "events" not in m for m in ok(sandbox, "live/full")["result"])
    (odds,) = ok(sandbox, "matches/odds", i=MATCHES[0])["result"]
    assert odds["id"] == MATCHES[0]
    assert set(odds["live"]) == {"1X2", "asian_handicap", "goal_line", "corners", "first_half"}
    ticks = ok(sandbox, "matches/view/progressive", i=MATCHES[0])["result"]
    assert [t["timer"] for t in ticks[:3]] == ["00:00", "00:30", "01:00"] and ticks[-1]["timer"] == "20:00"
    assert (ticks[-1]["teamA"]["goals"], ticks[-1]["teamB"]["goals"]) == (1, 0)  # the 12th minute's goal


def test_matches_by_history_and_versus_filter_the_known_matches() -> None:
    sandbox = Sandbox(clock=Clock(), extra_matches=40)
    first = view(sandbox, MATCHES[0])
    home, away = first["teamA"], first["teamB"]
    league = every_page(sandbox, "matches/by/basic", c=LEAGUES[0])
    assert {m["id"] for m in league} == {MATCHES[0], MATCHES[1]}
    assert [m["id"] for m in ok(sandbox, "matches/by/basic", m=home["manager"]["id"])["result"]] == [MATCHES[0]]
    assert [m["id"] for m in ok(sandbox, "matches/by/basic", s=first["stadium"]["id"])["result"]] == [MATCHES[0]]
    assert ok(sandbox, "matches/by/basic", c=LEAGUES[1], m=home["manager"]["id"])["result"] == []  # ANDed
    assert ok(sandbox, "matches/by/basic", c="0" * 16)["pagination"][0]["items"] == 0
    assert [m["id"] for m in ok(sandbox, "teams/history", i=home["id"])["result"]] == [MATCHES[0]]
    for x, y in ((home, away), (away, home)):
        assert [m["id"] for m in ok(sandbox, "teams/versus", x=x["id"], y=y["id"])["result"]] == [MATCHES[0]]
    lonely = ok(sandbox, "teams/list", p="5")["result"][-1]["id"]
    assert ok(sandbox, "teams/versus", x=home["id"], y=lonely, w="6m")["result"] == []


def test_championship_view_tables_the_ended_matches() -> None:
    sandbox = Sandbox(clock=Clock())
    (league,) = ok(sandbox, "championships/view", i=LEAGUES[0])["result"]
    (season,) = league["seasons"]
    (group,) = season["groups"]
    points = [(row["position"], row["played"], row["points"], row["goals_for"]) for row in group["table"]]
    assert season["name"] == "2023/2024"
    assert points == [(1, 1, 3, 3), (2, 1, 1, 1), (3, 1, 1, 1), (4, 1, 0, 2)]  # 3-2 and 1-1
    assert group["table"][0]["team"]["id"] == view(sandbox, MATCHES[0])["teamA"]["id"]
    sandbox.attach(FakeFeed(playing(50)))  # type: ignore[arg-type]
    (league,) = ok(sandbox, "championships/view", i=LEAGUES[0])["result"]
    assert {row["played"] for row in league["seasons"][0]["groups"][0]["table"]} == {0}  # in play: not counted


@pytest.mark.parametrize(
    ("endpoint", "params", "status", "code", "message"),
    [
        ("matches/view/basic", {}, 400, 1, "Missing i param"),
        ("matches/view/basic", {"i": ""}, 400, 7, "Wrong i param"),
        ("matches/view/basic", {"i": "D2A1E6F4B3C50001"}, 400, 7, "Wrong i param"),
        ("matches/view/basic", {"i": "d2a1e6f4b3c5000"}, 400, 7, "Wrong i param"),
        ("matches/view/basic", {"i": "0" * 16}, 404, 6, "Not Found"),
        ("matches/odds", {"i": "0" * 16}, 404, 6, "Not Found"),
        ("teams/view", {"i": "0" * 16}, 404, 6, "Not Found"),
        ("matches/day/basic", {}, 400, 1, "Missing d param"),
        ("matches/day/basic", {"d": "2023-11-14"}, 400, 7, "Wrong d param"),
        ("matches/day/basic", {"d": "20231131"}, 400, 7, "Wrong d param"),
        ("matches/day/basic", {"d": ""}, 400, 7, "Wrong d param"),
        ("matches/day/basic", {"d": TODAY, "p": "0"}, 400, 7, "Wrong p param"),
        ("matches/day/basic", {"d": TODAY, "p": "two"}, 400, 7, "Wrong p param"),
        ("teams/list", {"p": "-1"}, 400, 7, "Wrong p param"),
        ("teams/list", {"c": "Italy"}, 400, 7, "Wrong c param"),
        ("teams/list", {"l": "xx_XX"}, 400, 7, "Wrong l param"),
        ("teams/list", {"f": "csv"}, 400, 7, "Wrong f param"),
        ("matches/by/basic", {}, 400, 1, "Missing c param"),
        ("matches/by/basic", {"c": LEAGUES[0], "m": "nope"}, 400, 7, "Wrong m param"),
        ("teams/history", {}, 400, 1, "Missing i param"),
        ("teams/history", {"i": "0" * 16, "w": "2y"}, 400, 7, "Wrong w param"),
        ("teams/history", {"i": "0" * 16}, 404, 6, "Not Found"),
        ("teams/versus", {"x": "0" * 16}, 400, 1, "Missing y param"),
        ("teams/versus", {"x": "0" * 16, "y": "1" * 16}, 404, 6, "Not Found"),
        ("matches/view/nope", {}, 404, 6, "Not Found"),
        ("teams/lists", {}, 404, 6, "Not Found"),
    ],
)
def test_wrong_requests_get_the_documented_errors(endpoint, params, status, code, message) -> None:
    assert get(Sandbox(clock=Clock()), endpoint, **params)[:2] == (
        status,
        {"status": status, "errors": [{"code": code, "message": message}], "pagination": [], "result": []},
    )


def test_a_data_path_without_its_final_slash_is_unknown() -> None:
    answer = Sandbox().answer("/v1/teams/list", {"t": ["sandbox-key-pro"]}, {})[0]
    assert answer is not None and answer.status == 404


def test_token_status_is_direct_only_and_reports_the_plan_and_usage() -> None:
    clock = Clock()
    sandbox = Sandbox(rate_limit=50, rate_window=60, clock=clock)
    ok(sandbox, "teams/list", "sandbox-key-ultra")
    (status,) = ok(sandbox, "token/status", "sandbox-key-ultra")["result"]
    assert status == {
        "plan": "ULTRA",
        "expire_date": "2023-12-14 00:00:00",
        "status": "active",
        "usage": {"requests_p_hour": 50, "pagination_items": 50, "last_hour_requests": 2},
    }
    assert ok(sandbox, "token/status", "sandbox-key-basic")["result"][0]["usage"]["pagination_items"] == 25
    assert rapid(sandbox, "sandbox-key-ultra", path="/token/status/")[:2] == (
        404,
        {"message": "Endpoint '/token/status/' does not exist"},
    )


def test_the_quota_counts_every_endpoint_of_a_key_and_resets_with_its_window() -> None:
    clock = Clock()
    sandbox = Sandbox(rate_limit=5, rate_window=60, retry_after=True, clock=clock)
    answers = [
        get(sandbox, "teams/list", "sandbox-key-pro"),
        get(sandbox, "matches/day/basic", "sandbox-key-pro", d=TODAY),
        get(sandbox, "matches/view/basic", "sandbox-key-pro", i="0" * 16),  # a 404 counts
        get(sandbox, "matches/day/basic", "sandbox-key-pro", d="bad"),  # a 400 counts
        get(sandbox, "matches/view/full", "sandbox-key-pro", i=MATCHES[0]),  # refused by plan: counts
    ]
    assert [(s, h["X-Rate-Limit-Remaining"]) for s, _, h in answers] == [
        (200, "4"),
        (200, "3"),
        (404, "2"),
        (400, "1"),
        (401, "0"),
    ]
    assert ask(sandbox, "/v1/ws/new/").status == 429  # ws/ shares the key's quota
    clock.now = T0 + 20
    status, body, headers = get(sandbox, "teams/list", "sandbox-key-pro")
    assert (status, body["errors"]) == (429, [{"code": 7, "message": "Too many requests"}])
    assert (headers["Retry-After"], headers["X-Rate-Limit-Reset"], headers["X-Rate-Limit-Limit"]) == ("40", "40", "5")
    assert get(sandbox, "teams/list", "sandbox-key-mega")[0] == 200  # another key, its own quota
    clock.now = T0 + 60
    status, _, headers = get(sandbox, "teams/list", "sandbox-key-pro")
    assert (status, headers["X-Rate-Limit-Remaining"], headers["X-Rate-Limit-Reset"]) == (200, "4", "60")
    # Without retry_after (the default: the vendor documents none), the 429 has no Retry-After.
    quiet = Sandbox(rate_limit=0, clock=clock)
    status, _, headers = get(quiet, "teams/list")
    assert status == 429 and "Retry-After" not in headers


def test_rapidapi_data_requests_carry_both_windows_headers() -> None:
    clock = Clock()
    sandbox = Sandbox(rate_limit=10, rapidapi_limit=2, clock=clock)

    headers = {"x-rapidapi-key": "sandbox-key-pro", "x-rapidapi-host": RAPID_HOST}

    def call() -> tuple[int, dict[str, Any], dict[str, str]]:
        answer = sandbox.answer("/matches/day/basic/", {"d": [TODAY]}, headers)[0]
        assert answer is not None
        return answer.status, json.loads(answer.body), answer.headers

    status, body, got = call()
    assert status == 200 and body["pagination"] == [{"page": 1, "per_page": 25, "items": 3}]
    assert {k: v for k, v in got.items() if k.startswith("x-ratelimit")} == {
        "x-ratelimit-requests-limit": "10",
        "x-ratelimit-requests-remaining": "9",
        "x-ratelimit-requests-reset": "3600",
        "x-ratelimit-limit": "2",
        "x-ratelimit-remaining": "1",
        "x-ratelimit-reset": "60",
    }
    assert rapid(sandbox, "sandbox-key-pro", path="/teams/list/")[0] == 200
    status, body, headers = call()
    assert (status, body) == (
        429,
        {"message": "You have exceeded the rate limit per minute for your plan by the API provider"},
    )
    # The proxy refused it: the API's quota did not count it.
    assert (headers["x-ratelimit-remaining"], headers["x-ratelimit-requests-remaining"]) == ("0", "8")
    clock.now = T0 + 60
    assert rapid(sandbox, "sandbox-key-pro", path="/teams/list/")[0] == 200
    # Plans apply as on the direct API.
    status, body, _ = rapid(sandbox, "sandbox-key-basic", path="/live/basic/")
    assert (status, body["errors"]) == (401, [{"code": 4, "message": "Token does not have permission"}])
    # /v1 paths do not exist there.
    assert rapid(sandbox, "sandbox-key-pro", path="/v1/teams/list/")[0] == 404


@pytest.mark.parametrize(("kind", "status"), [("5xx", 500), ("html", 502), ("rate_limit", 429), ("throttle", 429)])
def test_faults_hit_the_data_endpoints_too(kind: str, status: int) -> None:
    sandbox = Sandbox(rate_limit=5, clock=Clock())
    sandbox.inject(kind, delay=2)
    answer = sandbox.answer("/v1/teams/list/", {"t": ["sandbox-key-pro"]}, {}, sandbox.next_fault())[0]
    assert answer is not None and answer.status == status
    assert get(sandbox, "teams/list", "sandbox-key-pro")[2]["X-Rate-Limit-Remaining"] == "4"  # the fault not counted


def test_malformed_and_dropped_data_answers_and_the_log() -> None:
    sandbox = Sandbox(clock=Clock())
    sandbox.inject("malformed")
    sandbox.inject("drop")
    query = {"t": ["sandbox-key-pro"], "d": [TODAY]}
    malformed = sandbox.handle("GET", "/v1/matches/day/basic/", query, {}, fault=sandbox.next_fault())
    assert malformed is not None and malformed.status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(malformed.body)
    assert sandbox.handle("GET", "/v1/matches/day/basic/", query, {}, fault=sandbox.next_fault()) is None
    sandbox.handle("GET", "/v1/matches/day/basic/", query, {})
    assert [(r.endpoint, r.status, r.fault) for r in sandbox.calls("matches/day/basic")] == [
        ("matches/day/basic", 200, "malformed"),
        ("matches/day/basic", None, "drop"),
        ("matches/day/basic", 200, None),
    ]


def test_data_endpoints_over_http_in_both_modes() -> None:
    clock = Clock()
    script = MatchScript.build("abcdef0123456789", LEAGUES[0], [(1, "home")], stats_every=None, odds_every=None)
    with SandboxServer(clock=clock, match_day=TODAY, extra_matches=30) as api:
        session = requests.Session()
        teams = session.get(f"{api.url}/v1/teams/list/", params={"t": "sandbox-key-mega", "p": "5"}, timeout=5)
        assert teams.status_code == 200 and teams.headers["X-Rate-Limit-Remaining"] == "999"
        assert teams.json()["pagination"] == [{"page": 5, "per_page": 100, "items": 401}]
        assert len(teams.json()["result"]) == 1
        blank = session.get(f"{api.url}/v1/matches/view/basic/?i=&t=sandbox-key-pro", timeout=5)
        assert (blank.status_code, blank.json()["errors"]) == (400, [{"code": 7, "message": "Wrong i param"}])
        headers = {"X-RapidAPI-Key": "sandbox-key-pro", "X-RapidAPI-Host": RAPID_HOST}
        day = session.get(f"{api.url}/matches/day/basic/", params={"d": TODAY, "p": "2"}, headers=headers, timeout=5)
        # One quota per key, whichever the mode.
        assert day.status_code == 200 and day.headers["x-ratelimit-requests-remaining"] == "998"
        assert day.json()["pagination"] == [{"page": 2, "per_page": 25, "items": 33}] and len(day.json()["result"]) == 8
        # The feed's playback, seen through REST.
        playback = api.play([script], minute_seconds=0.05)
        deadline = time.monotonic() + 2
        while (playback.minute or 0) < 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        live = session.get(f"{api.url}/live/basic/", headers=headers, timeout=5).json()["result"]
        in_play = [m for m in live if m["id"] == script.match_id]
        assert len(in_play) == 1 and in_play[0]["teamA"]["score"]["f"] == 1
        api.feed.stop_playing()
        match = session.get(
            f"{api.url}/matches/view/basic/", params={"i": script.match_id}, headers=headers, timeout=5
        ).json()["result"][0]
        assert (match["status"], goals_of(match)) == ("ENDED", [{"type": "goal", "timer": "1", "team": "A"}])
        assert [c.endpoint for c in api.calls()] == [
            "teams/list",
            "matches/view/basic",
            "matches/day/basic",
            "live/basic",
            "matches/view/basic",
        ]
