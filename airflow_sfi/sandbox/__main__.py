"""``python -m airflow_sfi.sandbox``: run the sandbox API until interrupted."""

from __future__ import annotations

import argparse
import contextlib
import threading

from airflow_sfi.sandbox.api import DEFAULT_KEYS, RENEW_MODES
from airflow_sfi.sandbox.server import SandboxServer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m airflow_sfi.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    parser.add_argument("--port", type=int, default=0, help="port (default: any free one)")
    parser.add_argument("--ttl", type=float, default=25 * 60, help="WebSocket token lifetime in seconds")
    parser.add_argument("--rate-limit", type=int, default=1000, help="requests per key per hour")
    parser.add_argument(
        "--renew",
        choices=RENEW_MODES,
        default="extend",
        help="ws/renew extends the active token (default) or is absent (404, like an unknown path)",
    )
    args = parser.parse_args(argv)
    if args.ttl <= 0:
        parser.error("--ttl must be positive")
    options = {"ttl": args.ttl, "rate_limit": args.rate_limit, "renew": args.renew}
    with SandboxServer(args.host, args.port, verbose=True, **options) as api:
        print(f"Sandbox API on {api.url} (token TTL {args.ttl:g} s, ws/renew {args.renew}). Keys:", flush=True)
        for key, info in DEFAULT_KEYS.items():
            print(f"  {key:24} {info.plan:5} {info.state}", flush=True)
        print(f"Direct: {api.url}/v1/ws/new/?t=<key>   RapidAPI: {api.url}/ws/new/ with X-RapidAPI-Key", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
