"""
``[core] hostname_callable`` for the components :mod:`tests.system.production` starts: each reports its own name
(``worker-1``, ``triggerer-2``...), as it would on a machine of its own, so that a task instance's or a
job's ``hostname`` says which component ran it. Kept free of imports: every Airflow process loads it.
"""

from __future__ import annotations

import os
import socket


def component_hostname() -> str:
    return os.environ.get("SFI_COMPONENT_HOSTNAME") or socket.getfqdn()
