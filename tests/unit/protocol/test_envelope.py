"""The response parser against malformed and hostile answers: a table, then arbitrary JSON."""

from __future__ import annotations

import contextlib
import json

import pendulum
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_sfi.exceptions import (
    SfiApiError,
    SfiAuthError,
    SfiError,
    SfiRateLimitError,
    SfiResponseError,
)
from airflow_sfi.protocol.envelope import Pagination, parse_envelope
from airflow_sfi.protocol.token import parse_ws_token_response
from airflow_sfi.sandbox import SandboxServer
from tests.helpers import token_item

API_KEY = "hostile-api-key-31337"
WS_TOKEN = "ws-token-abcdef-123456"
FUTURE = pendulum.now("UTC").add(minutes=20).format("YYYY-MM-DD HH:mm:ss")


def scrub(text: str) -> str:
    return text.replace(API_KEY, "***")


def item(**changes: object) -> dict[str, object]:
    return token_item(WS_TOKEN, FUTURE, **changes)


def envelope(result: object = None, **changes: object) -> bytes:
    body: dict[str, object] = {
        "status": 200,
        "errors": [],
        "pagination": [],
        "result": [item()] if result is None else result,
    }
    body.update(changes)
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


CASES = [
    # (name, HTTP status, body, headers, error class, message fragment)
    ("not json", 200, b"hello", {}, SfiResponseError, "HTTP 200 with a body that is not JSON"),
    ("empty body", 200, b"", {}, SfiResponseError, "an empty body"),
    ("html page", 200, b"<!DOCTYPE html><html><body>Oops</body></html>", {}, SfiResponseError, "an HTML page"),
    ("html 502", 502, b"<html><body>Bad Gateway</body></html>", {}, SfiApiError, "HTTP 502: and an HTML page"),
    ("non-utf8", 200, b"\xff\xfe{\x00", {}, SfiResponseError, "not UTF-8"),
    ("json array", 200, b"[]", {}, SfiResponseError, "not an envelope object (got a list)"),
    ("json string", 200, b'"ok"', {}, SfiResponseError, "not an envelope object (got a string)"),
    ("json null", 200, b"null", {}, SfiResponseError, "not an envelope object (got null)"),
    ("no status", 200, envelope(status=...), {}, SfiResponseError, "no integer 'status'"),
    ("status string", 200, envelope(status="200"), {}, SfiResponseError, "no integer 'status'"),
    ("status bool", 200, envelope(status=True), {}, SfiResponseError, "no integer 'status'"),
    ("errors object", 200, envelope(errors={"code": 1}), {}, SfiResponseError, "'errors' is not a list"),
    ("no result", 200, envelope(result=...), {}, SfiResponseError, "'result' is not a list"),
    ("result object", 200, envelope(result={"token": "x"}), {}, SfiResponseError, "'result' is not a list"),
    ("result empty", 200, envelope(result=[]), {}, SfiResponseError, "0 results instead of exactly one token"),
    (
        "result two",
        200,
        envelope(result=[item(), item()]),
        {},
        SfiResponseError,
        "2 results instead of exactly one token",
    ),
    ("item not object", 200, envelope(result=["x"]), {}, SfiResponseError, "must be a JSON object, got a string"),
    ("token missing", 200, envelope(result=[item(token=...)]), {}, SfiResponseError, "'token' is missing"),
    (
        "token null",
        200,
        envelope(result=[item(token=None)]),
        {},
        SfiResponseError,
        "'token' must be a string, got null",
    ),
    ("token number", 200, envelope(result=[item(token=5)]), {}, SfiResponseError, "'token' must be a string"),
    ("server missing", 200, envelope(result=[item(server=...)]), {}, SfiResponseError, "'server' is missing"),
    ("server http", 200, envelope(result=[item(server="http://x")]), {}, SfiResponseError, "not a ws:// or wss://"),
    ("is_new missing", 200, envelope(result=[item(is_new=...)]), {}, SfiResponseError, "'is_new' is missing"),
    ("is_new int", 200, envelope(result=[item(is_new=1)]), {}, SfiResponseError, "'is_new' must be a boolean"),
    (
        "max_connections str",
        200,
        envelope(result=[item(max_connections="2")]),
        {},
        SfiResponseError,
        "'max_connections' must be an integer",
    ),
    (
        "max_subscribe null",
        200,
        envelope(result=[item(max_subscribe_per_connection=None)]),
        {},
        SfiResponseError,
        "'max_subscribe_per_connection' must be an integer, got null",
    ),
    (
        "channels string",
        200,
        envelope(result=[item(allowed_channels="MAIN")]),
        {},
        SfiResponseError,
        "'allowed_channels' must be a list",
    ),
    ("channels of ints", 200, envelope(result=[item(allowed_channels=[1])]), {}, SfiResponseError, "list of strings"),
    ("expires missing", 200, envelope(result=[item(expires_at=...)]), {}, SfiResponseError, "'expires_at' is missing"),
    (
        "expires garbage",
        200,
        envelope(result=[item(expires_at="tomorrow")]),
        {},
        SfiResponseError,
        "'expires_at' is not a",
    ),
    (
        "expires epoch",
        200,
        envelope(result=[item(expires_at=1705329000)]),
        {},
        SfiResponseError,
        "'expires_at' must be a string",
    ),
    (
        "expires holds a secret",
        200,
        envelope(result=[item(expires_at=API_KEY)]),
        {},
        SfiResponseError,
        "'expires_at' is not a",
    ),
    (
        "expires in the past",
        200,
        envelope(result=[item(expires_at="2024-01-15 14:30:00")]),
        {},
        SfiResponseError,
        "expired at 2024-01-15T14:30:00+00:00",
    ),
    (
        "error envelope under 200",
        200,
        envelope(status=401, errors=[{"code": 2, "message": "Token is invalid"}], result=[]),
        {},
        SfiAuthError,
        "HTTP 200, status 401, code 2: Token is invalid",
    ),
    (
        "errors under status 200",
        200,
        envelope(errors=[{"code": 7, "message": "Wrong t param"}]),
        {},
        SfiApiError,
        "code 7: Wrong t param",
    ),
    (
        "errors as strings",
        400,
        envelope(status=400, errors=["Missing t param"], result=[]),
        {},
        SfiApiError,
        "HTTP 400: Missing t param",
    ),
    (
        "error echoing the key",
        401,
        envelope(status=401, errors=[{"code": 2, "message": f"bad {API_KEY}"}], result=[]),
        {},
        SfiAuthError,
        "code 2: bad ***",
    ),
    (
        "429 envelope",
        429,
        envelope(status=429, errors=[{"code": 7, "message": "Too many requests"}], result=[]),
        {"X-Rate-Limit-Reset": "1800"},
        SfiRateLimitError,
        "code 7: Too many requests); retry at",
    ),
    ("rapidapi 401", 401, b'{"message":"Invalid API key."}', {}, SfiAuthError, "HTTP 401: Invalid API key."),
    ("rapidapi 403", 403, b'{"message":"You are not subscribed to this API."}', {}, SfiAuthError, "not subscribed"),
    ("rapidapi 429", 429, b'{"message":"Too many requests"}', {}, SfiRateLimitError, "HTTP 429: Too many requests"),
    ("rapidapi message 200", 200, b'{"message":"maintenance"}', {}, SfiResponseError, "a message and no data"),
    ("rapidapi echoing the key", 401, json.dumps({"message": API_KEY}).encode(), {}, SfiAuthError, "HTTP 401: ***"),
    ("503 no envelope", 503, b'{"error": "down"}', {}, SfiApiError, "HTTP 503: and no envelope status"),
    # Parser-level failures: the decoder itself gives up, or the JSON is valid but extreme.
    ("deep array", 200, b"[" * 100_000 + b"]" * 100_000, {}, SfiResponseError, "not JSON (or nested too deeply)"),
    ("deep object", 200, b'{"a":' * 50_000 + b"1" + b"}" * 50_000, {}, SfiResponseError, "nested too deeply"),
    ("deep under 502", 502, b"[" * 100_000, {}, SfiApiError, "HTTP 502: and a body that is not JSON"),
    (
        "deep error message",
        401,
        envelope(status=401, errors=[{"code": 2, "message": []}], result=[]).replace(
            b"[]}]", b"[" * 500 + b"]" * 500 + b"}]"
        ),
        {},
        SfiAuthError,
        "code 2: (a list)",
    ),
    (
        "deep rapidapi message",
        500,
        b'{"message":' + b"[" * 500 + b"]" * 500 + b"}",
        {},
        SfiApiError,
        "HTTP 500: (a list)",
    ),
    ("huge integer", 200, b'{"status": ' + b"9" * 5000 + b"}", {}, SfiResponseError, "a body that is not JSON"),
    ("huge float status", 200, envelope(status=1e308 * 10), {}, SfiResponseError, "no integer 'status'"),
    ("NaN status", 200, b'{"status": NaN, "errors": [], "result": []}', {}, SfiResponseError, "no integer 'status'"),
    (
        "huge max_connections",
        200,
        envelope(result=[item(max_connections=10**300)]),
        {},
        None,
        "",
    ),
    ("far-future expiry", 200, envelope(result=[item(expires_at="9999-12-31 23:59:59")]), {}, None, ""),
    (
        "year zero expiry",
        200,
        envelope(result=[item(expires_at="0000-01-01 00:00:00")]),
        {},
        SfiResponseError,
        "'expires_at' is not a",
    ),
    ("utf-16 body", 200, envelope().decode().encode("utf-16"), {}, SfiResponseError, "not UTF-8"),
    ("utf-8 bom", 200, b"\xef\xbb\xbf" + envelope(), {}, None, ""),
    ("lone surrogate escape", 200, envelope(result=[item(token="\ud800")]), {}, None, ""),
    (
        "long vendor message",
        400,
        envelope(status=400, errors=["x" * 10_000], result=[]),
        {},
        SfiApiError,
        "x" * 199 + "…",
    ),
]


@pytest.mark.parametrize(("name", "status", "body", "headers", "error", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_each_bad_answer_is_named(name, status, body, headers, error, fragment) -> None:
    """Each answer is either a token (``error`` None: extreme but valid) or one typed, secret-free error."""
    if error is None:
        assert parse_ws_token_response(status, body, headers, scrub=scrub).seconds_left() > 0
        return
    with pytest.raises(SfiError) as caught:
        parse_ws_token_response(status, body, headers, scrub=scrub)
    assert type(caught.value) is error
    assert fragment in str(caught.value)
    assert API_KEY not in str(caught.value) and WS_TOKEN not in str(caught.value)


def test_offset_expiry_is_accepted_as_utc() -> None:
    moment = pendulum.now("UTC").add(minutes=20).replace(microsecond=0)
    body = envelope(result=[item(expires_at=moment.in_timezone("Asia/Kolkata").isoformat())])
    assert parse_ws_token_response(200, body).expires_at == moment


def test_rate_limit_headers_are_carried() -> None:
    with pytest.raises(SfiRateLimitError) as caught:
        parse_ws_token_response(429, b'{"message":"slow down"}', {"Retry-After": "7"})
    assert caught.value.retry_after == 7
    assert caught.value.reset_at is not None and 5 < (caught.value.reset_at - pendulum.now("UTC")).total_seconds() <= 7
    epoch = int(pendulum.now("UTC").add(hours=1).timestamp())
    with pytest.raises(SfiRateLimitError) as caught:
        parse_ws_token_response(429, envelope(status=429, result=[]), {"x-rate-limit-reset": str(epoch)})
    assert caught.value.retry_after is None and caught.value.reset_at == pendulum.from_timestamp(epoch)


@pytest.mark.parametrize(
    ("pagination", "expected", "pages", "last"),
    [
        ([], None, None, None),
        (None, None, None, None),
        ([{"page": 1, "per_page": 100, "items": 6831}], Pagination(1, 100, 6831), 69, False),
        ([{"page": 69, "per_page": 100, "items": 6831}], Pagination(69, 100, 6831), 69, True),
        ([{"page": 2, "per_page": 25, "items": 50, "extra": "x"}], Pagination(2, 25, 50), 2, True),
        ([{"page": "3", "per_page": "50", "items": "101"}], Pagination(3, 50, 101), 3, True),
        ([{"page": 1, "per_page": 25, "items": 0}], Pagination(1, 25, 0), 0, True),
    ],
)
def test_pagination_is_parsed_and_its_pages_computed(pagination, expected, pages, last) -> None:
    parsed = parse_envelope(200, envelope(result=[], pagination=pagination)).pagination
    assert parsed == expected
    if expected is not None:
        assert (parsed.pages, parsed.is_last) == (pages, last)


@pytest.mark.parametrize(
    ("pagination", "fragment"),
    [
        ({"page": 1, "per_page": 25, "items": 3}, "'pagination' is not [{page, per_page, items}]"),
        ([{"page": 1, "per_page": 25, "items": 3}] * 2, "'pagination' is not [{page, per_page, items}]"),
        (["page 1"], "'pagination' is not [{page, per_page, items}]"),
        ([{"per_page": 25, "items": 3}], "pagination 'page' is not an integer of at least 1 (got null)"),
        ([{"page": 0, "per_page": 25, "items": 3}], "pagination 'page' is not an integer of at least 1"),
        ([{"page": 1, "per_page": 0, "items": 3}], "pagination 'per_page' is not an integer of at least 1"),
        ([{"page": 1, "per_page": 25, "items": -1}], "pagination 'items' is not an integer of at least 0"),
        ([{"page": 1, "per_page": 25, "items": 2.5}], "'items' is not an integer of at least 0 (got a number)"),
        ([{"page": True, "per_page": 25, "items": 3}], "'page' is not an integer of at least 1 (got a boolean)"),
    ],
)
def test_malformed_pagination_is_a_response_error(pagination: object, fragment: str) -> None:
    with pytest.raises(SfiResponseError) as caught:
        parse_envelope(200, envelope(result=[], pagination=pagination))
    assert fragment in str(caught.value) and caught.value.http_status == 200


def test_the_envelope_carries_items_pagination_and_rate_limit() -> None:
    body = envelope(result=[{"id": "m1"}, {"id": "m2"}], pagination=[{"page": 1, "per_page": 2, "items": 3}])
    parsed = parse_envelope(200, body, {"X-Rate-Limit-Limit": "1800", "X-Rate-Limit-Remaining": "17"})
    assert parsed.result == [{"id": "m1"}, {"id": "m2"}]
    assert parsed.pagination == Pagination(page=1, per_page=2, items=3) and parsed.pagination.pages == 2
    assert (parsed.rate_limit.limit, parsed.rate_limit.remaining, parsed.rate_limit.reset_at) == (1800, 17, None)


def test_huge_body_is_refused_by_the_hook(sfi_sandbox: SandboxServer) -> None:
    from airflow_sfi.hooks.sfi import SfiHook

    sfi_sandbox.inject("huge")
    with pytest.raises(SfiResponseError, match="a body over 1048576 bytes"):
        SfiHook().get_ws_token()
    assert len(sfi_sandbox.calls()) == 1


def nested(depth: int, leaf: bytes = b"1") -> bytes:
    return b"[" * depth + leaf + b"]" * depth


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.sampled_from([API_KEY]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from([200, 400, 401, 429, 500, "200", None]) | st.integers(),
        "errors": st.lists(JSON, max_size=3) | JSON,
        "pagination": JSON,
        "result": st.lists(st.dictionaries(st.sampled_from(list(item())), JSON) | JSON, max_size=2) | JSON,
        "message": JSON,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(status=st.sampled_from([200, 201, 204, 301, 400, 401, 403, 404, 429, 500, 502, 503]), body=FIELDS | JSON)
def test_arbitrary_json_only_raises_sfi_errors_without_the_secret(status: int, body: object) -> None:
    try:
        parse_ws_token_response(status, json.dumps(body).encode(), {}, scrub=scrub)
    except SfiError as exc:
        assert API_KEY not in str(exc)


@settings(max_examples=200, deadline=None)
@given(status=st.integers(100, 599), body=st.binary(max_size=200))
def test_arbitrary_bytes_only_raise_sfi_errors(status: int, body: bytes) -> None:
    with contextlib.suppress(SfiError):
        parse_ws_token_response(status, body, {"Retry-After": "x"}, scrub=scrub)


@settings(max_examples=60, deadline=None)
@given(
    status=st.sampled_from([200, 401, 429, 502]),
    depth=st.integers(1, 200_000),
    where=st.sampled_from(["body", "result", "errors", "message", "token"]),
)
def test_nested_bodies_of_any_depth_only_raise_sfi_errors(status: int, depth: int, where: str) -> None:
    deep = nested(depth)
    body = {
        "body": deep,
        "result": envelope(result=[]).replace(b'"result":[]', b'"result":' + deep),
        "errors": envelope(result=[]).replace(b'"errors":[]', b'"errors":[' + deep + b"]"),
        "message": b'{"message":' + deep + b"}",
        "token": envelope().replace(b'"token":"' + WS_TOKEN.encode() + b'"', b'"token":' + deep),
    }[where]
    with contextlib.suppress(SfiError):
        parse_ws_token_response(status, body, {}, scrub=scrub)


@settings(max_examples=30, deadline=None)
@given(size=st.integers(0, 1 << 20), filler=st.sampled_from([b" ", b"0", b"\\u0000", b"9"]))
def test_oversized_bodies_only_raise_sfi_errors(size: int, filler: bytes) -> None:
    body = b'{"status":200,"errors":[],"result":[' + filler * (size // len(filler)) + b"]}"
    with contextlib.suppress(SfiError):
        parse_ws_token_response(200, body, {}, scrub=scrub)
