"""The endpoints table and the check that turns (endpoint, params) into a query before any call."""

from __future__ import annotations

import datetime
import re

import pytest

from airflow_sfi.exceptions import SfiConfigError
from airflow_sfi.protocol import endpoints
from airflow_sfi.protocol.endpoints import ENDPOINTS, PARAMS, check, day, find
from tests.helpers import REPO

MATCH_ID = "a1b2c3d4e5f60718"
DAY = datetime.date(2024, 3, 1)
MINUS_2 = datetime.timezone(datetime.timedelta(hours=-2))


def problem(call: object) -> str:
    with pytest.raises(SfiConfigError) as caught:
        call()  # type: ignore[operator]
    assert caught.value.problem == str(caught.value)
    return caught.value.problem


def test_every_documented_path_is_in_the_table() -> None:
    documented = {
        "ws/new", "ws/renew", "token/status",
        "matches/view/basic", "matches/view/full", "matches/view/progressive",
        "matches/day/basic", "matches/day/full", "matches/by/basic", "matches/by/full",
        "live/basic", "live/full", "matches/odds", "teams/history", "teams/versus",
        *(f"{kind}/list" for kind in ("countries", "languages", "stadiums", "managers", "referees", "players",
                                      "teams", "championships")),
        *(f"{kind}/view" for kind in ("stadiums", "managers", "referees", "players", "teams", "championships")),
    }  # fmt: skip
    assert set(ENDPOINTS) == documented
    for name, endpoint in ENDPOINTS.items():
        assert endpoint.path == f"{name}/" and endpoint.name == name
        assert endpoint.required <= endpoint.allowed <= set(PARAMS)
        assert ("p" in endpoint.allowed) == endpoint.paginated
        assert endpoint.plans and set(endpoint.plans) <= {"BASIC", "PRO", "ULTRA", "MEGA"}
    assert [name for name, e in ENDPOINTS.items() if e.direct_only] == ["token/status"]
    assert ENDPOINTS["teams/list"].plans == ("BASIC", "PRO", "ULTRA", "MEGA")
    assert ENDPOINTS["matches/view/full"].plans == ("ULTRA", "MEGA")
    assert ENDPOINTS["ws/new"].secrets == ("token", "server")


@pytest.mark.parametrize(
    ("name", "params", "query"),
    [
        ("matches/view/basic", {"i": MATCH_ID}, {"i": MATCH_ID}),
        ("/matches/view/basic/", {"i": MATCH_ID, "l": "en_US"}, {"i": MATCH_ID, "l": "en_US"}),
        ("matches/day/basic", {"d": "20240229"}, {"d": "20240229"}),
        ("matches/day/full", {"d": DAY, "p": 2, "f": "json"}, {"d": "20240301", "p": "2", "f": "json"}),
        ("matches/day/basic", {"d": datetime.datetime(2024, 3, 1, 23, 30, tzinfo=MINUS_2)}, {"d": "20240302"}),
        ("matches/by/basic", {"c": "ch-1", "m": None, "p": "3"}, {"c": "ch-1", "p": "3"}),
        ("teams/versus", {"x": "1", "y": "not-hex-at-all", "w": "6m"}, {"x": "1", "y": "not-hex-at-all", "w": "6m"}),
        ("live/basic", {}, {}),
        ("ws/new", {}, {}),
    ],
)  # fmt: skip
def test_a_good_call_becomes_its_query(name: str, params: dict[str, object], query: dict[str, str]) -> None:
    endpoint, got = check(name, params, auth_type="direct")
    assert endpoint is find(name) and got == query


@pytest.mark.parametrize(
    ("name", "params", "fragment"),
    [
        ("matches/veiw/basic", {}, "no documented endpoint 'matches/veiw/basic'; did you mean 'matches/view/basic'?"),
        ("v1/live/basic", {}, "did you mean 'live/basic'?"),
        ("teams/lists", {}, "did you mean 'teams/list'?"),
        ("nothing-like-it-at-all", {}, "the documented ones: ws/new, ws/renew, token/status,"),
        ("matches/view/basic", {}, "matches/view/basic needs i (an id); it takes i (an id, required), l ("),
        ("matches/view/basic", {"i": MATCH_ID, "id": MATCH_ID}, "matches/view/basic takes no parameter 'id'"),
        ("matches/view/basic", {"i": MATCH_ID, "p": 1}, "matches/view/basic takes no parameter 'p'"),
        ("token/status", {"t": "key"}, "token/status takes no parameter 't'; it takes none"),
        ("matches/view/basic", {"i": ""}, "matches/view/basic: parameter 'i' is empty"),
        ("matches/view/basic", {"i": "   "}, "parameter 'i' is empty"),
        ("matches/view/basic", {"i": 1234}, "parameter 'i' must be an id: a string, got int 1234"),
        ("matches/view/basic", {"i": MATCH_ID, "l": 5}, "parameter 'l' must be a string, got int 5"),
        ("matches/day/basic", {"d": "2024-02-29"}, "parameter 'd': a day must be a date or a 'YYYYMMDD' string"),
        ("matches/day/basic", {"d": "20230229"}, "parameter 'd': day '20230229' is not a real date (YYYYMMDD)"),
        ("matches/day/basic", {"d": "20241301"}, "is not a real date"),
        ("matches/day/basic", {"d": 20240101}, "got int 20240101"),
        ("matches/day/basic", {"d": "20240101", "p": 0}, "parameter 'p' must be a page number from 1, got int 0"),
        ("matches/day/basic", {"d": "20240101", "p": True}, "page number from 1, got bool"),
        ("matches/day/basic", {"d": "20240101", "f": "csv"}, "the hook reads JSON answers only (f='json'), got 'csv'"),
        ("teams/history", {"i": "t1", "w": "2y"}, "parameter 'w' must be one of all, 1y, 6m, got '2y'"),
        ("teams/versus", {"x": "t1"}, "teams/versus needs y (the other team's id)"),
    ],
)
def test_a_wrong_call_is_named(name: str, params: dict[str, object], fragment: str) -> None:
    assert fragment in problem(lambda: check(name, params, auth_type="direct"))


def test_token_status_is_direct_only() -> None:
    assert check("token/status", {}, auth_type="direct") == (ENDPOINTS["token/status"], {})
    said = problem(lambda: check("token/status", {}, auth_type="rapidapi"))
    assert said.startswith("token/status is offered by the direct API only, not in rapidapi mode")
    for name in set(ENDPOINTS) - {"token/status"}:
        ENDPOINTS[name].check_mode("rapidapi")


def test_parameters_are_checked_before_the_mode() -> None:
    # A bad parameter is what the caller can fix first, whatever the connection.
    assert "takes no parameter 'x'" in problem(lambda: check("token/status", {"x": "1"}, auth_type="rapidapi"))


def test_a_name_that_is_not_a_string() -> None:
    assert "no documented endpoint of type int" in problem(lambda: find(42))  # type: ignore[arg-type]


def test_day() -> None:
    assert day(datetime.date(2024, 1, 5)) == "20240105"
    assert day(datetime.datetime(2024, 1, 5, 23, 59)) == "20240105"  # naive: taken as it is
    assert day("20240105") == "20240105"
    for wrong in ("2024015", "202401055", "abcdefgh", "20240100", b"20240105", None):
        with pytest.raises(SfiConfigError):
            day(wrong)


def test_every_param_is_described_and_every_id_is_a_string_param() -> None:
    assert set(PARAMS) >= endpoints.ID_PARAMS
    assert all(PARAMS.values())


def test_the_docs_table_names_every_endpoint_with_its_required_params() -> None:
    rows = [line for line in (REPO / "docs" / "rest.md").read_text().splitlines() if line.startswith("| `")]
    named = {name: row for row in rows for name in re.findall(r"`([a-z]+(?:/[a-z]+)+)`", row.split("|")[1])}
    assert set(named) == set(ENDPOINTS)
    for name, endpoint in ENDPOINTS.items():
        assert set(re.findall(r"\*\*`(\w)`\*\*", named[name].split("|")[2])) == endpoint.required, name
        assert ("yes" in named[name].split("|")[3]) == endpoint.paginated, name
        assert ("direct API only" in named[name]) == endpoint.direct_only, name
