"""The sfi_sandbox fixture: a sandbox per test, its options from the marker, and sfi_default pointing at it."""

from __future__ import annotations

import json
import os

import pytest
import requests

from airflow_sfi.sandbox import SandboxServer

RAPID_HOST = "soccer-football-info.p.rapidapi.com"


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
