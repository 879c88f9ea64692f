"""The running estate's control API: status, ground truth, change logs (``fleetfix lab ...``).

Plain HTTP on loopback with a bearer token that only the lab directory's ``lab.json`` (mode 0600)
holds.  Routes, all ``GET`` and JSON:

* ``/status`` — scenario, counts, where everything listens;
* ``/truth`` — every finding a correct sweep must report (:mod:`lab.estate.truth`);
* ``/changes`` — every state-changing call each host received, in order;
* ``/faults`` — what the scenario injected, host by host;
* ``/connections`` — sessions up per RRAS node.

:class:`ControlClient` is the other end, used by the CLI.
"""

from __future__ import annotations

import datetime
import hmac
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from lab.estate.web import Reply
from lab.http import HttpRequest
from lab.state import Change

JSON = "application/json"
Route = Callable[[], Any]


def change_dict(change: Change) -> dict[str, Any]:
    return {
        "seq": change.seq,
        "at": change.at.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z"),
        "host": change.host,
        "script_id": change.script_id,
        "what": change.what,
        "before": change.before,
        "after": change.after,
    }


class ControlApi:
    """Answers control requests from route functions that run on the lab's event loop."""

    def __init__(self, token: str, routes: Mapping[str, Route]) -> None:
        self._token = token
        self._routes = dict(routes)

    async def __call__(self, request: HttpRequest) -> Reply:
        given = (request.header("authorization") or "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), self._token.encode()):
            return Reply(401, b'{"error": "missing or wrong control token"}', JSON)
        route = self._routes.get(request.target.split("?", 1)[0])
        if request.method != "GET" or route is None:
            return Reply(
                404, json.dumps({"error": f"no control {request.method} {request.target}"}).encode(), JSON
            )
        return Reply(200, json.dumps(route(), default=str).encode(), JSON)


class ControlError(Exception):
    """The lab's control API could not be reached or refused the request."""


class ControlClient:
    """Talks to a running estate's control API."""

    def __init__(self, url: str, token: str, timeout_s: float = 600.0) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._timeout_s = timeout_s

    def get(self, path: str) -> Any:
        request = urllib.request.Request(  # noqa: S310 (a loopback http URL the lab wrote)
            f"{self.url}{path}", headers={"Authorization": f"Bearer {self._token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:  # noqa: S310
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise ControlError(f"the lab answered {exc.code} to {path}") from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise ControlError(f"the lab does not answer at {self.url}: {exc}") from None


__all__ = ["ControlApi", "ControlClient", "ControlError", "change_dict"]
