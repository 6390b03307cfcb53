"""The sandbox on the command line: `python -m airflow_sfi.sandbox`."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from airflow_sfi.sandbox.__main__ import main


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


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--minute-seconds", "0"], "--minute-seconds must be positive"), (["--replay", "-1"], "--replay must not be")],
)
def test_command_line_refuses_bad_ws_arguments(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2 and message in capsys.readouterr().err
