"""Test settings: a private AIRFLOW_HOME, set before anything imports airflow, and the sandbox's fixture."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet

# The sfi_sandbox fixture: the sandbox's pytest plugin is opt-in, as for any user of the package.
pytest_plugins = ["airflow_sfi.sandbox.pytest_plugin"]

_REPO = Path(__file__).resolve().parent.parent
_home = tempfile.mkdtemp(prefix="sfi-airflow-home-")
os.environ["AIRFLOW_HOME"] = _home
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_REPO / "example_dags")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_home}/airflow.db"
# Encrypted Variables and connections, as in a deployment (without a key Airflow stores them in clear,
# and a Fernet that breaks, as cryptography 51 did on Airflow 3.0 and 3.1, would go unnoticed).
os.environ["AIRFLOW__CORE__FERNET_KEY"] = Fernet.generate_key().decode()
os.environ.pop("AIRFLOW_CONN_SFI_DEFAULT", None)
