"""Fail unless every runtime dependency is installed at the exact lower bound the provider declares."""

from __future__ import annotations

import sys
from importlib.metadata import requires, version

from packaging.requirements import Requirement
from packaging.version import Version


def main() -> int:
    wrong = []
    for line in requires("airflow-provider-sfi") or []:
        requirement = Requirement(line)
        if requirement.marker is not None:  # extras (test, bench) are not runtime dependencies
            continue
        floor = next((spec.version for spec in requirement.specifier if spec.operator == ">="), None)
        installed = version(requirement.name)
        print(f"{requirement.name}: declared {requirement.specifier}, installed {installed}")
        if floor is not None and Version(installed) != Version(floor):
            wrong.append(f"{requirement.name} {installed} is not the declared floor {floor}")
    print("\n".join(wrong) or "every runtime dependency is at its declared floor")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
