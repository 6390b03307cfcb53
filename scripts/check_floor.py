"""
Fail unless every runtime dependency is installed at the exact lower bound the provider declares.

With ``--constraints``, print instead a constraint ``name==floor`` for each runtime dependency of
``pyproject.toml``, for the floor environment's install: ``--resolution lowest-direct`` alone may
still pick a newer direct dependency when a newer transitive one needs it (providers-common-io needs a
newer providers-common-compat, for one).
"""

from __future__ import annotations

import sys
from importlib.metadata import requires, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


def floor_of(requirement: Requirement) -> str | None:
    return next((spec.version for spec in requirement.specifier if spec.operator == ">="), None)


def constraints() -> int:
    project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"]
    for line in project["dependencies"]:
        requirement = Requirement(line)
        floor = floor_of(requirement)
        if floor is not None:
            print(f"{requirement.name}=={floor}")
    return 0


def main() -> int:
    wrong = []
    for line in requires("airflow-provider-sfi") or []:
        requirement = Requirement(line)
        if requirement.marker is not None:  # an extra's, were there any: not a runtime dependency
            continue
        floor = floor_of(requirement)
        installed = version(requirement.name)
        print(f"{requirement.name}: declared {requirement.specifier}, installed {installed}")
        if floor is not None and Version(installed) != Version(floor):
            wrong.append(f"{requirement.name} {installed} is not the declared floor {floor}")
    print("\n".join(wrong) or "every runtime dependency is at its declared floor")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(constraints() if sys.argv[1:] == ["--constraints"] else main())
