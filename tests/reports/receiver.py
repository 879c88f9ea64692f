"""A webhook receiver on 127.0.0.1 for tests: a threaded ``http.server`` whose answer depends on the
path, recording every request it gets.

Paths (anything after the first segment is ignored, so tests can append a "token"):

* ``/ok`` -- 200 ``ok``
* ``/flaky`` -- 500 the first time, then 200
* ``/busy`` -- 429 with ``Retry-After`` from the query (``?after=7``) the first time, then 200
* ``/missing`` -- 404 ``no_service``
* ``/hang`` -- reads the request and never answers (until the receiver stops)
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    base_url: str
    requests: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    seen: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def to(self, kind: str) -> list[Received]:
        return [r for r in self.requests if r.path.split("/")[1].split("?")[0] == kind]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            kind = urlsplit(self.path).path.split("/")[1]
            with receiver.lock:
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                receiver.seen[kind] += 1
                count = receiver.seen[kind]
            if kind == "hang":
                receiver.release.wait(30)
                return
            if kind == "flaky" and count == 1:
                self._answer(500, "oops")
            elif kind == "busy" and count == 1:
                after = parse_qs(urlsplit(self.path).query).get("after", ["0"])[0]
                self._answer(429, "slow down", {"Retry-After": after})
            elif kind == "missing":
                self._answer(404, "no_service")
            else:
                self._answer(200, "ok")

        def _answer(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
            data = text.encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    receiver = Receiver(f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
