"""Provides tiny loopback servers for failure tests: canned HTTP answers, and a socket that never answers."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from .procs import free_port


@dataclass(frozen=True)
class Answer:
    """A canned HTTP answer."""

    status: int = 200
    body: bytes | str | dict | list = b""
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        if isinstance(self.body, (dict, list)):
            return json.dumps(self.body).encode()
        return self.body.encode() if isinstance(self.body, str) else self.body


Route = Answer | Callable[[str], Answer]


class StubHttpServer:
    """Answers by path (query string ignored) from ``routes``; ``"*"`` is the fallback; records every request."""

    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = dict(routes)
        self.requests: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes

            def do_GET(self):
                stub.requests.append(self.path)
                path = urlsplit(self.path).path
                route = stub.routes.get(path, stub.routes.get("*", Answer(404, "not found", "text/plain")))
                answer = route(self.path) if callable(route) else route
                body = answer.encoded()
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), name="stub-http", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> StubHttpServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SilentServer:
    """Accepts TCP connections and never answers: every HTTP request to it times out."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._held: list[socket.socket] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-server", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._held.append(conn)  # keep it open, read nothing, say nothing

    def close(self) -> None:
        self._closed.set()
        self.sock.close()
        for conn in self._held:
            conn.close()

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def closed_port_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"
