"""The built wheel and sdist, installed into a clean virtual environment. Run by `make test-dist`."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.packaging
UV = str(Path(sys.executable).parent / "uv")


def built(pattern: str) -> Path:
    found = sorted((REPO / "dist").glob(pattern))
    assert found, f"no {pattern} in dist/: run `make dist` first"
    return found[-1]


def test_wheel_holds_the_package_data_and_entry_points() -> None:
    with zipfile.ZipFile(built("*.whl")) as wheel:
        names = set(wheel.namelist())
        entry_points = next(wheel.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    for module in (
        "hooks/api.py",
        "operators/ws_token.py",
        "sensors/ws_token.py",
        "sandbox/server.py",
        "get_provider_info.py",
        "py.typed",
    ):
        assert f"airflow_sfi/{module}" in names
    assert "[apache_airflow_provider]" in entry_points and "[pytest11]" in entry_points
    assert not any(name.startswith(("tests/", "example_dags/")) for name in names)


def test_sdist_holds_tests_and_example_dags() -> None:
    with tarfile.open(built("*.tar.gz")) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {
        "README.md",
        "LICENSE",
        "CHANGELOG.md",
        "example_dags/sfi_token_rotation.py",
        "tests/hooks/test_api.py",
        "tests/helpers.py",
    } <= names


def test_wheel_installs_and_registers_in_a_clean_environment(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([UV, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    subprocess.run(
        [
            UV,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(venv / "bin" / "python"),
            "--constraint",
            str(REPO / "constraints.txt"),
            f"{built('*.whl')}[test]",
        ],
        check=True,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")} | {
        "AIRFLOW_HOME": str(tmp_path / "home")
    }
    run = {"cwd": tmp_path, "env": env, "capture_output": True, "text": True, "check": True}
    code = (
        "import airflow_sfi, airflow_sfi.sandbox, airflow_sfi.hooks.api as h; "
        "print(airflow_sfi.__file__, h.SfiHook.conn_type)"
    )
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], **run).stdout
    assert str(venv) in out and out.strip().endswith(" sfi")
    providers = subprocess.run([str(venv / "bin" / "airflow"), "providers", "list"], **run).stdout
    assert "airflow-provider-sfi" in providers
    (tmp_path / "test_user.py").write_text("def test_fixture(sfi_sandbox):\n    assert sfi_sandbox.port > 0\n")
    tested = subprocess.run([str(venv / "bin" / "pytest"), "-q", "-p", "no:cacheprovider", "test_user.py"], **run)
    assert "1 passed" in tested.stdout
