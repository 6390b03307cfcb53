"""SfiConfig: the connection, parsed and checked once, in every form a user can write it."""

from __future__ import annotations

import json

import pytest
from airflow.sdk import Connection

from airflow_sfi.config import AUTH_MODES, SfiConfig
from airflow_sfi.exceptions import SfiConfigError

SECRET = "cfg-secret-123"


def config(**fields: object) -> SfiConfig:
    extra = fields.pop("extra", {})
    fields.setdefault("password", SECRET)
    return SfiConfig.from_connection(Connection(conn_id="my_sfi", conn_type="sfi", extra=json.dumps(extra), **fields))  # type: ignore[arg-type]


def test_defaults_reach_the_real_api_in_direct_mode() -> None:
    cfg = config()
    assert (cfg.auth_type, cfg.base_url, cfg.url("ws/new/")) == (
        "direct",
        "https://api.soccerfootball.info",
        "https://api.soccerfootball.info/v1/ws/new/",
    )
    assert cfg.mode.credential(cfg) == ({"t": SECRET}, {})


def test_rapidapi_paths_have_no_v1_and_the_key_goes_in_headers() -> None:
    cfg = config(extra={"auth_type": " RapidAPI ", "rapidapi_host": "soccerfootballinfo.rapidapi.com"})
    assert cfg.url("ws/renew/") == "https://soccer-football-info.p.rapidapi.com/ws/renew/"
    assert cfg.mode.credential(cfg) == (
        {},
        {"X-RapidAPI-Key": SECRET, "X-RapidAPI-Host": "soccerfootballinfo.rapidapi.com"},
    )


@pytest.mark.parametrize(
    ("fields", "base_url"),
    [
        ({"host": "http://127.0.0.1:8080"}, "http://127.0.0.1:8080"),
        ({"host": "127.0.0.1", "schema": "http", "port": 8080}, "http://127.0.0.1:8080"),
        ({"host": "proxy.example/sfi/"}, "https://proxy.example/sfi"),
        # Airflow's UI sends port 0 for an empty Port field.
        ({"host": "http://127.0.0.1:8080", "port": 0}, "http://127.0.0.1:8080"),
        ({"host": "api.example", "port": 0}, "https://api.example"),
        ({"host": "http://[::1]:9000"}, "http://[::1]:9000"),
    ],
)
def test_host_schema_and_port_combine_into_one_base_url(fields: dict[str, object], base_url: str) -> None:
    assert config(**fields).base_url == base_url


def test_repr_shows_every_field_but_the_secret() -> None:
    cfg = config(extra={"timeout": 3, "max_attempts": 2, "max_retry_wait": 5})
    text = repr(cfg)
    assert SECRET not in text and "secret" not in text
    for name in ("auth_type", "base_url", "rapidapi_host", "timeout=3.0", "max_attempts=2", "max_retry_wait=5.0"):
        assert name in text


def test_every_auth_mode_names_its_secret_when_missing() -> None:
    for auth_type, mode in AUTH_MODES.items():
        with pytest.raises(SfiConfigError, match=f"no password: put the {mode.secret_name} there"):
            config(password="", extra={"auth_type": auth_type})


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"extra": {"auth_type": "oauth"}}, r"auth_type 'oauth' is not one of \['direct', 'rapidapi'\]"),
        ({"host": "ftp://example.com"}, "host 'example.com' is not a valid http"),
        ({"host": "http://"}, "is not a valid http"),
        ({"host": "http://example.com:99999"}, "is not a valid http"),
        ({"host": "http://user:pw@example.com"}, "is not a valid http"),
        ({"host": "http://example.com/?a=1"}, "is not a valid http"),
        ({"extra": {"timeout": "soon"}}, "extra 'timeout' must be a number of at least 0.001, got 'soon'"),
        ({"extra": {"timeout": 0}}, "extra 'timeout' must be a number of at least 0.001, got '0'"),
        ({"extra": {"timeout": -1}}, "extra 'timeout' must be a number"),
        ({"extra": {"timeout": "inf"}}, "extra 'timeout' must be a number"),
        ({"extra": {"timeout": "nan"}}, "extra 'timeout' must be a number"),
        ({"extra": {"max_attempts": 0}}, "extra 'max_attempts' must be a number of at least 1"),
        ({"extra": {"max_retry_wait": -0.5}}, "extra 'max_retry_wait' must be a number of at least 0"),
    ],
)
def test_configuration_errors_name_the_field_not_the_secret(fields: dict[str, object], problem: str) -> None:
    with pytest.raises(SfiConfigError, match=problem) as caught:
        config(**fields)
    assert str(caught.value).startswith("connection 'my_sfi': ")
    assert not caught.value.problem.startswith("connection")  # what a form that shows its own id needs
    assert SECRET not in str(caught.value) and "pw@" not in str(caught.value)
