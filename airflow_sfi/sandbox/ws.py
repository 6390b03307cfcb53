"""The sandbox's WebSocket server: a :class:`~airflow_sfi.sandbox.live.Feed` on a real socket.

It runs its own asyncio loop in a background thread. The rules live in the feed; this module admits
or refuses handshakes, passes frames to the feed, sends what the feed queues (one sending task per
connection, so a stall holds that connection only), closes on the feed's word and injects faults.
A connection over the token's ``max_connections`` is accepted like any other: the feed queued its
``CONNECTION_LIMIT`` error and its close (4003), which are sent like any other frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import urllib.parse
from typing import TYPE_CHECKING, NamedTuple

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from airflow_sfi.sandbox.live import WS_FAULTS, Feed, HandshakeRefusedError, Session

# The sandbox's choice: how often open sockets' tokens are checked (the brief is "at least every 0.1 s").
TOKEN_CHECK_EVERY = 0.05

if TYPE_CHECKING:
    _Adapter = logging.LoggerAdapter[logging.Logger]
else:
    _Adapter = logging.LoggerAdapter


class _WithoutDebug(_Adapter):
    """websockets' server logger less its debug lines: they show the handshake's request line, token and all."""

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - logging's name
        return level > logging.DEBUG and super().isEnabledFor(level)


class _Close(NamedTuple):
    code: int
    reason: str


class _Peer:
    """One admitted connection: its session, what waits to be sent, and its stall."""

    def __init__(self, connection: ServerConnection) -> None:
        self.connection = connection
        self.address: tuple[str, int] = connection.remote_address
        self.session: Session | None = None
        self.queue: asyncio.Queue[str | bytes | _Close] = asyncio.Queue()
        self.sender: asyncio.Task[None] | None = None
        self.stalled_until = 0.0  # on the loop's clock
        self.stalls = 0  # the latest stall's number: only its end resumes reading
        self.reading_paused = False

    def put(self, item: str | bytes | _Close) -> None:
        # From any thread (the feed calls it under its lock): queued in call order, sent by the loop.
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server stopped
            self.connection.loop.call_soon_threadsafe(self.queue.put_nowait, item)

    def put_close(self, code: int, reason: str) -> None:
        self.put(_Close(code, reason))


def _close_code(connection: ServerConnection) -> int:
    # The code of the first close frame either side sent, or 1006 (abnormal) when there was none.
    protocol = connection.protocol
    sent, received = protocol.close_sent, protocol.close_rcvd
    first = received if protocol.close_rcvd_then_sent or sent is None else sent
    return 1006 if first is None else first.code


class WsServer:
    """
    The feed on a WebSocket server in a background thread; ``start()`` and ``stop()``.

    :param feed: admits connections, answers commands and routes events.
    :param host: the address to bind.
    :param port: the port, 0 for any free one.
    :param verbose: print one line per handshake and per close (never the token).
    """

    def __init__(self, feed: Feed, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False) -> None:
        self.feed = feed
        self.host = host
        self._port = port
        self._verbose = verbose
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Server | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._peers: dict[ServerConnection, _Peer] = {}

    def start(self) -> WsServer:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=loop.run_forever, name="sfi-sandbox-ws", daemon=True)
            self._thread.start()
            self._loop = loop
            try:
                asyncio.run_coroutine_threadsafe(self._serve(), loop).result(timeout=10)
            except BaseException:
                self.stop()
                raise
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = self._server = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the WebSocket server is not running")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        """``ws://host:port/``; clients add ``?token=``."""
        return f"ws://{self.host}:{self.port}/"

    def inject(self, kind: str, *, delay: float = 5.0, code: int = 1012) -> int:
        """
        A fault on every connection open now; how many it hit.

        :param kind: ``drop`` (abort the TCP connection, no close frame), ``close`` (a close frame with
            ``code``, after what was already queued), ``stall`` (send nothing and read nothing, so not even
            pongs, for ``delay`` seconds, then send what queued meanwhile, in order) or ``garbage`` (the
            frames of :meth:`Feed.garbage`, then carry on).
        """
        if kind not in WS_FAULTS:
            raise ValueError(f"fault {kind!r} is not one of {list(WS_FAULTS)}")
        if self._loop is None:
            raise RuntimeError("the WebSocket server is not running")
        return asyncio.run_coroutine_threadsafe(self._inject(kind, delay, code), self._loop).result(timeout=10)

    async def _serve(self) -> None:
        # No keepalive pings from the server: a client's liveness checks are its own, and a stalled
        # connection must send nothing at all.
        self._server = await serve(
            self._handle,
            self.host,
            self._port,
            process_request=self._process_request,
            ping_interval=None,
            close_timeout=2,
            logger=_WithoutDebug(logging.getLogger("websockets.server")),
        )
        self._watcher = asyncio.get_running_loop().create_task(self._watch_tokens())

    async def _shutdown(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        for peer in self._peers.values():
            self._unstall(peer, peer.stalls)
            peer.stalled_until = 0.0
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        await asyncio.sleep(0)  # the connection-lost callbacks
        for peer in list(self._peers.values()):
            self._lost(peer)

    async def _watch_tokens(self) -> None:
        while True:
            self.feed.check_tokens()
            await asyncio.sleep(TOKEN_CHECK_EVERY)

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urllib.parse.urlsplit(request.path)
        tokens = urllib.parse.parse_qs(parts.query).get("token")
        token = tokens[0] if tokens else None
        peer = _Peer(connection)
        try:
            peer.session = self.feed.connect(
                token, peer.put, peer.put_close, path=parts.path, client_port=peer.address[1]
            )
        except HandshakeRefusedError as refused:
            self._log(peer.address, f"refused {refused.status}")
            return connection.respond(refused.status, refused.text)
        self._peers[connection] = peer
        # Whatever ends the connection (even a failed handshake), the feed hears of it.
        connection.connection_lost_waiter.add_done_callback(lambda _: self._lost(peer))
        over = peer.session.refused
        self._log(peer.address, "open" if over is None else f"over the connection limit, closing {over}")
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        peer = self._peers.get(connection)
        if peer is None or peer.session is None:
            return
        peer.sender = asyncio.get_running_loop().create_task(self._send(peer))
        try:
            async for frame in connection:
                self.feed.receive(peer.session, frame)
        except ConnectionClosed:
            pass
        finally:
            peer.sender.cancel()

    async def _send(self, peer: _Peer) -> None:
        loop = asyncio.get_running_loop()
        while True:
            item = await peer.queue.get()
            while (left := peer.stalled_until - loop.time()) > 0:
                await asyncio.sleep(left)
            try:
                if isinstance(item, _Close):
                    await peer.connection.close(item.code, item.reason)
                    return
                await peer.connection.send(item)
            except ConnectionClosed:
                return

    def _lost(self, peer: _Peer) -> None:
        if self._peers.pop(peer.connection, None) is None:
            return
        if peer.sender is not None:
            peer.sender.cancel()
        code = _close_code(peer.connection)
        assert peer.session is not None
        self.feed.closed(peer.session, code)
        self._log(peer.address, f"closed {code}")

    async def _inject(self, kind: str, delay: float, code: int) -> int:
        peers = [
            p
            for p in self._peers.values()
            if p.connection.state is State.OPEN and p.session is not None and not p.session.closing
        ]
        for peer in peers:
            assert peer.session is not None
            if kind == "drop":
                peer.connection.transport.abort()
            elif kind == "close":
                self.feed.close(peer.session, code, "sandbox fault")
            elif kind == "stall":
                self._stall(peer, delay)
            else:
                for frame in self.feed.garbage():
                    peer.put(frame)
        return len(peers)

    def _stall(self, peer: _Peer, delay: float) -> None:
        loop = asyncio.get_running_loop()
        peer.stalled_until = max(peer.stalled_until, loop.time() + delay)
        peer.stalls += 1
        if not peer.reading_paused:
            # Nothing is read, so nothing is answered: not commands, nor the protocol's own pings.
            peer.connection.transport.pause_reading()
            peer.reading_paused = True
        loop.call_at(peer.stalled_until, functools.partial(self._unstall, peer, peer.stalls))

    def _unstall(self, peer: _Peer, stall: int) -> None:
        if peer.reading_paused and stall == peer.stalls:
            peer.reading_paused = False
            peer.connection.transport.resume_reading()

    def _log(self, address: tuple[str, int], what: str) -> None:
        if self._verbose:
            print(f"{address[0]} WS :{address[1]} {what}", flush=True)
