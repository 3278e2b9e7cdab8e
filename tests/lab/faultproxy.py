"""Provides a TCP proxy that puts faults between a client and a real server: refuse, slow, reset, garbage, truncate, oversize, HTTP status.

The fault matrix (``tests/faults``) puts one in front of each lab backend and switches its ``mode`` while a source
polls through it; ``heal()`` puts it back to ``pass``. It runs its own event loop in a thread, so sync and async
tests alike can use it.

Modes:
``pass``        forward both ways, untouched;
``refuse``      stop listening: new connections are refused (the port stays reserved and listens again on heal);
``slow``        accept, then hold the request for ``delay_s`` before forwarding (10x a source's timeout, say);
``blackhole``   accept and never answer;
``reset``       forward the request, pass on the first ``cut_bytes`` of the answer, then reset the connection (RST);
``truncate``    forward, pass on the first ``cut_bytes`` of the answer, then close cleanly (a cut-off body);
``garbage``     answer every request with ``HTTP/1.1 200`` and a body that is not JSON (or raw bytes, ``raw=True``);
``wrong-types`` answer ``HTTP/1.1 200`` with valid JSON of the wrong shape (``body`` to choose it);
``oversize``    answer ``HTTP/1.1 200`` with an endless chunked body (``\"aaaa…``) until the client hangs up;
``http:NNN``    answer with HTTP status NNN and a small JSON error body (401, 403, 404, 500, 503).

``match`` (a knob of ``set``) narrows a fault to the HTTP requests whose head holds that text (a path, a query
parameter): the others pass, one request per connection (the proxy asks the server to close after each answer,
so the next request comes on a new connection and is looked at in turn).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

MODES = ("pass", "refuse", "slow", "blackhole", "reset", "truncate", "garbage", "wrong-types", "oversize")


class FaultProxy:
    """One listening port on 127.0.0.1 that forwards to ``target`` unless told to misbehave."""

    def __init__(self, target_host: str, target_port: int, *, port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.mode = "pass"
        self.delay_s = 30.0
        self.cut_bytes = 64
        self.body: Any = {"unexpected": ["shape"], "data": 42}
        self.match: str | None = None  # only requests whose head holds this (None: every connection)
        self.connections = 0  # accepted so far (a test can tell a client really came)
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"faultproxy-{target_port}", daemon=True)
        self._thread.start()
        self.port = self._call(self._listen(port))

    # ------------------------------------------------------------------ control
    @property
    def url_host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set(self, mode: str, **knobs: Any) -> None:
        """Switch to ``mode`` (see the module docstring); connections already open are cut unless ``pass``."""
        if mode not in MODES and not mode.startswith("http:"):
            raise ValueError(f"unknown fault mode {mode!r}")
        for key, value in knobs.items():
            if not hasattr(self, key):
                raise ValueError(f"unknown knob {key!r}")
            setattr(self, key, value)
        self.mode = mode
        self._call(self._apply())

    def heal(self) -> None:
        self.set("pass", match=None)

    @contextlib.contextmanager
    def fault(self, mode: str, **knobs: Any) -> Iterator[FaultProxy]:
        self.set(mode, **knobs)
        try:
            yield self
        finally:
            self.heal()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _listen(self, port: int) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        self._server = await asyncio.start_server(self._handle, sock=sock)
        return sock.getsockname()[1]

    async def _stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        for writer in list(self._writers):
            _abort(writer)

    async def _apply(self) -> None:
        if self.mode == "refuse":
            server, self._server = self._server, None
            if server is not None:
                server.close()
                await server.wait_closed()
        elif self._server is None:
            await self._listen(self.port)
        if self.mode != "pass":
            for writer in list(self._writers):
                _abort(writer)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        mode, match = self.mode, self.match
        try:
            head = b""
            if match is not None and mode != "pass":
                head = _close_after(await reader.readuntil(b"\r\n\r\n"))
                if match.encode() not in head:
                    mode = "pass"  # not the request the fault is for
            if mode == "pass":
                await self._forward(reader, writer, prefix=head)
            elif mode in ("slow", "blackhole"):
                await asyncio.sleep(self.delay_s if mode == "slow" else 3600)
                if self.mode == "pass":
                    await self._forward(reader, writer, prefix=head)
            elif mode in ("reset", "truncate"):
                await self._forward(reader, writer, cut=self.cut_bytes, reset=mode == "reset", prefix=head)
            else:
                await _read_request(reader, head)
                await self._answer(writer, mode)
        except (ConnectionError, asyncio.IncompleteReadError, OSError, asyncio.CancelledError):
            pass  # a cancelled handler ends quietly: the proxy is closing
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, mode: str) -> None:
        if mode == "garbage":
            body = b"<html><body>502 Bad Gateway \x00\xff\xfe not json {{{</body></html>"
            await _send(writer, 200, body, "text/html")
        elif mode == "wrong-types":
            await _send(writer, 200, json.dumps(self.body).encode(), "application/json")
        elif mode == "oversize":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b'{"data": "' + b"a" * 65536
            while True:  # endless: until the client gives up and hangs up
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
                chunk = b"a" * 65536
        else:
            status = int(mode.split(":", 1)[1])
            body = json.dumps(
                {
                    "error": {"code": status, "message": f"injected HTTP {status}"},
                    "status": "error",
                    "errorType": "injected",
                    "kind": "Status",
                    "code": status,
                }
            ).encode()
            await _send(writer, status, body, "application/json")

    async def _forward(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        cut: int | None = None,
        reset: bool = False,
        prefix: bytes = b"",
    ) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        if prefix:
            up_writer.write(prefix)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, limit: int | None) -> None:
            sent = 0
            head: bytes | None = b""
            try:
                while True:
                    data = await src.read(65536)
                    if not data:
                        break
                    if limit is not None and head is not None:
                        # the cut counts from the start of the body: an answer whose head is whole and body is not
                        head += data
                        end = head.find(b"\r\n\r\n")
                        if end < 0:
                            continue
                        data, head, limit = head, None, limit + end + 4
                    if limit is not None and sent + len(data) >= limit:
                        dst.write(data[: max(0, limit - sent)])
                        await dst.drain()
                        if reset:
                            _abort(dst)
                        else:
                            dst.close()
                        return
                    sent += len(data)
                    dst.write(data)
                    await dst.drain()
            finally:
                with contextlib.suppress(Exception):
                    if limit is None:
                        dst.write_eof()

        try:
            await asyncio.gather(pump(reader, up_writer, None), pump(up_reader, writer, cut))
        finally:
            _abort(up_writer)


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a crashed peer or a middlebox would."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(Exception):
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(Exception):
        writer.transport.abort()


def _close_after(head: bytes) -> bytes:
    """A request head that asks the server to close the connection after its answer."""
    lines = [line for line in head.rstrip(b"\r\n").split(b"\r\n") if not line.lower().startswith(b"connection:")]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n"


async def _read_request(reader: asyncio.StreamReader, head: bytes = b"") -> None:
    """Read one HTTP request's head (unless already read) and its Content-Length body (enough to answer it)."""
    head = head or await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1].strip() or 0)
    if length:
        await reader.readexactly(length)


async def _send(writer: asyncio.StreamWriter, status: int, body: bytes, ctype: str) -> None:
    writer.write(
        f"HTTP/1.1 {status} Injected\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()
