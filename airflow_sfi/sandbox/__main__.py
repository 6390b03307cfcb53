"""``python -m airflow_sfi.sandbox``: run the sandbox API and its WebSocket server until interrupted."""

from __future__ import annotations

import argparse
import contextlib
import threading

from airflow_sfi.sandbox.live import default_matches
from airflow_sfi.sandbox.rest import DEFAULT_KEYS, RENEW_MODES
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
    parser.add_argument("--play", action="store_true", help="play the default matches on the WebSocket, looping")
    parser.add_argument("--minute-seconds", type=float, default=1.0, help="real seconds per match minute (--play)")
    parser.add_argument("--replay", type=int, default=0, help="messages per topic re-sent after a subscribe")
    args = parser.parse_args(argv)
    if args.ttl <= 0:
        parser.error("--ttl must be positive")
    if args.minute_seconds <= 0:
        parser.error("--minute-seconds must be positive")
    if args.replay < 0:
        parser.error("--replay must not be negative")
    options = {"ttl": args.ttl, "rate_limit": args.rate_limit, "renew": args.renew, "replay": args.replay}
    with SandboxServer(args.host, args.port, verbose=True, **options) as api:
        print(f"Sandbox API on {api.url} (token TTL {args.ttl:g} s, ws/renew {args.renew}). Keys:", flush=True)
        for key, info in DEFAULT_KEYS.items():
            print(f"  {key:24} {info.plan:5} {info.state}", flush=True)
        print(f"Direct: {api.url}/v1/ws/new/?t=<key>   RapidAPI: {api.url}/ws/new/ with X-RapidAPI-Key", flush=True)
        print(f"WebSocket on {api.ws_url} (replay {args.replay}): connect to ws/new's server", flush=True)
        if args.play:
            matches = default_matches()
            api.play(matches, minute_seconds=args.minute_seconds, loop=True)
            ids = ", ".join(f"{m.match_id} (league {m.league_id})" for m in matches)
            print(f"Playing, looped, one match minute every {args.minute_seconds:g} s: {ids}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
