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


def test_wheel_holds_the_package_and_its_entry_points() -> None:
    with zipfile.ZipFile(built("*.whl")) as wheel:
        names = set(wheel.namelist())
        entry_points = next(wheel.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    package = {path.relative_to(REPO).as_posix() for path in (REPO / "airflow_sfi").rglob("*.py")}
    assert package | {"airflow_sfi/py.typed"} <= names
    assert "[apache_airflow_provider]" in entry_points
    # The sandbox's pytest plugin is opt-in (pytest_plugins in a conftest): nothing loads it into every pytest run.
    assert "[pytest11]" not in entry_points
    assert not any(name.startswith(("tests/", "example_dags/")) for name in names)


def test_wheel_metadata_has_no_extras_and_says_where_the_project_lives() -> None:
    with zipfile.ZipFile(built("*.whl")) as wheel:
        metadata = next(wheel.read(n).decode() for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    fields = [line.split(": ", 1) for line in metadata.split("\n\n", 1)[0].splitlines() if ": " in line]
    # The test, bench and production-test tools are dependency groups (PEP 735), not extras users could install.
    assert [value for key, value in fields if key == "Provides-Extra"] == []
    assert not any(key == "Requires-Dist" and "extra ==" in value for key, value in fields)
    urls = dict(value.split(", ", 1) for key, value in fields if key == "Project-URL")
    assert set(urls) == {"Homepage", "Documentation", "Source", "Changelog", "Issues"}
    assert all(url.startswith("https://github.com/airflow-provider-sfi/airflow-provider-sfi") for url in urls.values())
    classifiers = {value for key, value in fields if key == "Classifier"}
    assert {
        "Framework :: Apache Airflow",
        "Framework :: Apache Airflow :: Provider",
        *(f"Programming Language :: Python :: 3.{minor}" for minor in (10, 11, 12, 13)),
    } <= classifiers


def test_sdist_holds_tests_and_example_dags() -> None:
    with tarfile.open(built("*.tar.gz")) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    sources = {
        path.relative_to(REPO).as_posix()
        for folder in ("airflow_sfi", "tests", "example_dags")
        for path in (REPO / folder).rglob("*.py")
    }
    assert {"README.md", "LICENSE", "CHANGELOG.md", "pyproject.toml", *sources} <= names


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
            str(built("*.whl")),
            "pytest",
        ],
        check=True,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")} | {
        "AIRFLOW_HOME": str(tmp_path / "home")
    }
    run = {"cwd": tmp_path, "env": env, "capture_output": True, "text": True, "check": True}
    code = "import airflow_sfi, airflow_sfi.sandbox; print(airflow_sfi.__file__, airflow_sfi.SfiHook.conn_type)"
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], **run).stdout
    assert str(venv) in out and out.strip().endswith(" sfi")
    providers = subprocess.run([str(venv / "bin" / "airflow"), "providers", "list"], **run).stdout
    assert "airflow-provider-sfi" in providers
    # The sandbox's fixture: not there unless the user's conftest.py opts in.
    user_tests = [str(venv / "bin" / "pytest"), "-q", "-p", "no:cacheprovider", "test_user.py"]
    (tmp_path / "test_user.py").write_text("def test_fixture(sfi_sandbox):\n    assert sfi_sandbox.port > 0\n")
    without = subprocess.run(user_tests, **(run | {"check": False}))
    assert without.returncode == 1 and "fixture 'sfi_sandbox' not found" in without.stdout
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["airflow_sfi.sandbox.pytest_plugin"]\n')
    tested = subprocess.run(user_tests, **run)
    assert "1 passed" in tested.stdout
