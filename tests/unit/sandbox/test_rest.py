"""The sandbox's behaviour (airflow_sfi.sandbox.rest), on a fake clock and without a socket."""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import re
from typing import Any

import pytest

from airflow_sfi.sandbox import MatchScript, Sandbox, SandboxKey, TokenRecord, default_matches
from airflow_sfi.sandbox.live import LEAGUES, MATCHES

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
