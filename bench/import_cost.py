"""Figure 1: extra import time of our operator and sensor, and a watcher DAG's, on top of airflow.sdk."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

CHILD = """
import json, time
t0 = time.perf_counter()
import airflow.sdk
t1 = time.perf_counter()
{imports}
t2 = time.perf_counter()
print(json.dumps({{"sdk": t1 - t0, "extra": t2 - t1}}))
"""
CANDIDATES = {
    "airflow_sfi": "import airflow_sfi.operators.ws_token, airflow_sfi.sensors.ws_token",
    "providers-http": "import airflow.providers.http.operators.http, airflow.providers.http.sensors.http",
    # What an asset watcher's DAG file imports: the trigger, parsed again by every run of the DAG.
    "airflow_sfi, a watcher's DAG": "import airflow_sfi.triggers.match_event, airflow_sfi.protocol.messages",
}


def measure(rounds: int) -> dict[str, dict[str, float]]:
    samples: dict[str, list[float]] = {name: [] for name in CANDIDATES}
    for _ in range(rounds):  # interleaved: one of each per round
        for name, imports in CANDIDATES.items():
            out = subprocess.run(
                [sys.executable, "-c", CHILD.format(imports=imports)], capture_output=True, text=True, check=True
            ).stdout
            samples[name].append(json.loads(out.strip().splitlines()[-1])["extra"])
    return {
        name: {"median_ms": statistics.median(values) * 1000, "min_ms": min(values) * 1000, "n": len(values)}
        for name, values in samples.items()
    }


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 12)))
