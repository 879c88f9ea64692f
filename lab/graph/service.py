"""Microsoft Graph for the lab: the Intune endpoints fleetfix uses, as a pure dispatch function.

:meth:`GraphService.handle` takes a parsed request and the caller's identity and returns status,
headers and JSON, with Graph's shapes: ``@odata.context``, ``value`` + ``@odata.nextLink`` paging,
error bodies with ``innerError`` and a ``request-id`` header on every answer.  ``$batch`` re-enters
the same dispatch for each sub-request, so throttling, roles and errors apply per item.  No I/O
happens here; the server (:mod:`lab.graph.server`) adds TLS, bearer checks, latency and faults.

Endpoints (``{v}`` is ``v1.0`` or ``beta``):

* ``GET /{v}/deviceManagement/managedDevices`` (``$filter``, ``$select``, ``$top``), ``GET …/{id}``,
  ``POST …/{id}/syncDevice`` (204)
* ``GET /{v}/deviceManagement/deviceConfigurations`` (``$filter=isof('…')``), ``GET|PATCH …/{id}``
  (PATCH answers 204), ``GET …/{id}/assignments``, ``POST …/{id}/assign``, ``GET …/{id}/deviceStatuses``,
  ``GET …/{id}/getOmaSettingPlainTextValue(secretReferenceValueId='…')``
* ``POST /{v}/$batch`` (at most 20 requests, answers out of order, 424 for failed dependencies)
"""

from __future__ import annotations

import base64
import random
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from lab.graph import config as cfg
from lab.graph.entra import Caller
from lab.graph.profiles import NATIVE_TYPE, ProfileError, masked, plain_value
from lab.graph.state import TenantState
from lab.graph.throttle import Throttle, bucket_of, retry_after_header

MAX_BATCH = 20
JSON_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
)
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
_DEVICE_FIELDS = {
    "id": "id", "devicename": "deviceName", "operatingsystem": "operatingSystem",
    "azureaddeviceid": "azureADDeviceId", "compliancestate": "complianceState",
    "userprincipalname": "userPrincipalName", "serialnumber": "serialNumber",
}  # fmt: skip
_EQ = re.compile(r"(\w+)\s+eq\s+'((?:[^']|'')*)'", re.IGNORECASE)
_STARTSWITH = re.compile(r"startswith\(\s*(\w+)\s*,\s*'((?:[^']|'')*)'\s*\)", re.IGNORECASE)
_ISOF = re.compile(r"isof\('microsoft\.graph\.(\w+)'\)")


@dataclass(frozen=True)
class GraphRequest:
    method: str
    target: str  # path and query, starting with the version: /beta/deviceManagement/...
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    body: Any = None


@dataclass
class GraphResponse:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class GraphFailure(Exception):
    """Raised inside a handler; becomes Graph's error body."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class _Call:
    """One request being handled: who, which version, its query, and the moment."""

    caller: Caller
    version: str
    path: str
    query: dict[str, str]
    request: GraphRequest
    now: float

    @property
    def beta(self) -> bool:
        return self.version == "beta"


Handler = Callable[["GraphService", _Call, tuple[str, ...]], GraphResponse]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    roles: frozenset[str]
    handler: Handler


_ROUTES: list[_Route] = []


def _route(method: str, pattern: str, *roles: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _ROUTES.append(_Route(method, re.compile(pattern), frozenset(roles), handler))
        return handler

    return register


_DEVICES = "/deviceManagement/managedDevices"
_CONFIGS = "/deviceManagement/deviceConfigurations"
_ID = r"([^/()]+)"
_READ_DEVICES = (cfg.ROLE_DEVICES_READ, cfg.ROLE_DEVICES_WRITE)
_READ_CONFIG = (cfg.ROLE_CONFIG_READ, cfg.ROLE_CONFIG_WRITE)


class GraphService:
    """Graph over a :class:`TenantState`; one instance per tenant, used from one thread."""

    def __init__(self, state: TenantState, throttle: Throttle, base_url: str) -> None:
        self.state = state
        self.throttle = throttle
        self.base_url = base_url
        self.scaled = state.config.time_scale != 1.0
        self.omit_retry_after = state.config.faults.omit_retry_after
        self._shuffle = random.Random(f"{state.config.seed}:batch")  # noqa: S311 (simulation)
        self.requests = 0

    def handle(self, caller: Caller, request: GraphRequest, now: float) -> GraphResponse:
        """Answer one request (a top-level one or a ``$batch`` item)."""
        self.requests += 1
        try:
            response = self._dispatch(caller, request, now)
        except GraphFailure as failure:
            return self._refuse(request, failure)
        return _stamped(response, request, str(uuid.uuid4()))

    def _refuse(self, request: GraphRequest, failure: GraphFailure) -> GraphResponse:
        request_id = str(uuid.uuid4())
        body = _error_body(failure, request_id, request)
        return _stamped(GraphResponse(failure.status, body, failure.headers), request, request_id)

    def _dispatch(self, caller: Caller, request: GraphRequest, now: float) -> GraphResponse:
        split = urlsplit(request.target)
        match = re.fullmatch(r"/(v1\.0|beta)(/.*)", split.path)
        if match is None:
            raise GraphFailure(400, "BadRequest", f"Invalid version: {split.path.split('/')[1:2]}")
        version, path = match.group(1), unquote(match.group(2))
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        call = _Call(caller, version, path, query, request, now)
        if path == "/$batch" and request.method == "POST":
            return self._batch(call)
        for route in _ROUTES:
            found = route.pattern.fullmatch(path)
            if found and route.method == request.method:
                self._authorize(call, route)
                self._admit(call, path)
                return route.handler(self, call, found.groups())
        raise GraphFailure(
            400, "BadRequest", f"Resource not found for the segment '{path.rsplit('/', 1)[-1]}'."
        )

    def _authorize(self, call: _Call, route: _Route) -> None:
        if not call.caller.roles & route.roles:
            needed = ", ".join(sorted(route.roles))
            raise GraphFailure(
                403, "Forbidden",
                "Application is not authorized to perform this operation. "
                f"Application must have one of the following scopes: {needed}",
            )  # fmt: skip

    def _admit(self, call: _Call, path: str) -> None:
        write = call.request.method in WRITE_METHODS
        verdict = self.throttle.admit(call.caller.app_id, bucket_of(path), write, call.now)
        if verdict.retry_after is not None:
            headers = (
                {}
                if self.omit_retry_after
                else {"Retry-After": retry_after_header(verdict.retry_after, self.scaled)}
            )
            raise GraphFailure(429, "TooManyRequests", "Please retry again later.", headers)

    # --- collections -----------------------------------------------------------------------------------

    def _page(self, call: _Call, items: Sequence[dict[str, Any]], context: str) -> GraphResponse:
        """One page of a collection with ``$top``/``$skiptoken`` and an absolute ``@odata.nextLink``."""
        top = _int_option(call.query, "$top", self.state.config.page_size)
        top = min(top, self.state.config.page_size)
        offset = _skiptoken(call.query.get("$skiptoken"))
        page = [_selected(item, call.query.get("$select")) for item in items[offset : offset + top]]
        body: dict[str, Any] = {
            "@odata.context": f"{self.base_url}/{call.version}/$metadata#{context}",
            "value": page,
        }
        if offset + top < len(items):
            query = dict(call.query, **{"$skiptoken": _token_for(offset + top)})
            body["@odata.nextLink"] = f"{self.base_url}/{call.version}{call.path}?{urlencode(query)}"
        return GraphResponse(200, body)

    # --- $batch ---------------------------------------------------------------------------------------

    def _batch(self, call: _Call) -> GraphResponse:
        items = _batch_items(call.request.body)
        statuses: dict[str, int] = {}
        responses = []
        for item in items:
            failed = [dep for dep in item.get("dependsOn") or [] if statuses.get(dep, 0) >= 400]
            sub = _sub_request(call.version, item)
            if failed:
                answer = self._refuse(
                    sub, GraphFailure(424, "FailedDependency", f"Dependent request {failed[0]} failed.")
                )
            elif sub.body is not None and "content-type" not in sub.headers:
                answer = self._refuse(
                    sub,
                    GraphFailure(
                        400, "BadRequest", "Content-Type header is required when a body is present."
                    ),
                )
            else:
                answer = self.handle(call.caller, sub, call.now)
            statuses[item["id"]] = answer.status
            entry: dict[str, Any] = {"id": item["id"], "status": answer.status, "headers": answer.headers}
            if answer.body is not None:
                entry["body"] = answer.body
            responses.append(entry)
        self._shuffle.shuffle(responses)  # Graph answers in any order
        return GraphResponse(200, {"responses": responses})


def _stamped(response: GraphResponse, request: GraphRequest, request_id: str) -> GraphResponse:
    """Graph's headers on every answer: its request id, the caller's client-request-id, JSON type."""
    response.headers.setdefault("request-id", request_id)
    response.headers.setdefault("client-request-id", request.headers.get("client-request-id", request_id))
    if response.body is not None:
        response.headers.setdefault("Content-Type", JSON_TYPE)
    return response


def _batch_items(body: Any) -> list[dict[str, Any]]:
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        raise GraphFailure(400, "BadRequest", "Invalid batch payload format.")
    if len(requests) > MAX_BATCH:
        raise GraphFailure(400, "BadRequest", f"The number of batch requests exceeds {MAX_BATCH}.")
    ids: set[str] = set()
    for item in requests:
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) for k in ("id", "method", "url")
        ):
            raise GraphFailure(400, "BadRequest", "Each batch request needs id, method and url.")
        if item["id"] in ids:
            raise GraphFailure(400, "BadRequest", f"Batch request id '{item['id']}' is used more than once.")
        if item["url"].lower().startswith(("http:", "https:")):
            raise GraphFailure(400, "BadRequest", "Batch request urls must be relative.")
        unknown = [dep for dep in item.get("dependsOn") or [] if dep not in ids]
        if unknown:
            raise GraphFailure(
                400, "BadRequest", f"Request {item['id']} depends on unknown or later request {unknown[0]}."
            )
        ids.add(item["id"])
    return requests


def _sub_request(version: str, item: Mapping[str, Any]) -> GraphRequest:
    headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
    url = item["url"] if item["url"].startswith("/") else "/" + item["url"]
    return GraphRequest(item["method"].upper(), f"/{version}{url}", headers, item.get("body"))


def _error_body(failure: GraphFailure, request_id: str, request: GraphRequest) -> dict[str, Any]:
    return {
        "error": {
            "code": failure.code,
            "message": failure.message,
            "innerError": {
                "date": formatdate(usegmt=True),
                "request-id": request_id,
                "client-request-id": request.headers.get("client-request-id", request_id),
            },
        }
    }


def _int_option(query: Mapping[str, str], name: str, default: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    if not text.isdigit() or int(text) < 1:
        raise GraphFailure(400, "BadRequest", f"Invalid value '{text}' for query option {name}.")
    return int(text)


def _token_for(offset: int) -> str:
    return base64.urlsafe_b64encode(f"fleetfix-lab:{offset}".encode()).decode()


def _skiptoken(token: str | None) -> int:
    if token is None:
        return 0
    try:
        prefix, _, offset = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        prefix, offset = "", ""
    if prefix != "fleetfix-lab" or not offset.isdigit():
        raise GraphFailure(400, "BadRequest", "The skip token is invalid.")
    return int(offset)


def _selected(item: Mapping[str, Any], select: str | None) -> dict[str, Any]:
    if not select:
        return dict(item)
    keys = [key.strip() for key in select.split(",") if key.strip()]
    return {key: item[key] for key in keys if key in item} | (
        {"@odata.type": item["@odata.type"]} if "@odata.type" in item else {}
    )


def device_filter(text: str | None) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate for the ``$filter`` subset Intune supports on managedDevices (eq, startswith, and)."""
    if not text:
        return lambda _: True
    tests: list[Callable[[Mapping[str, Any]], bool]] = []
    for clause in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        eq, starts = _EQ.fullmatch(clause), _STARTSWITH.fullmatch(clause)
        found = eq or starts
        if found is None or found.group(1).lower() not in _DEVICE_FIELDS:
            raise GraphFailure(400, "BadRequest", f"Invalid filter clause: {clause}")
        key, value = _DEVICE_FIELDS[found.group(1).lower()], found.group(2).replace("''", "'").casefold()
        tests.append(_field_test(key, value, exact=eq is not None))
    return lambda device: all(test(device) for test in tests)


def _field_test(key: str, value: str, *, exact: bool) -> Callable[[Mapping[str, Any]], bool]:
    """Intune compares strings without case in ``eq`` and ``startswith``."""

    def test(device: Mapping[str, Any]) -> bool:
        text = str(device.get(key, "")).casefold()
        return text == value if exact else text.startswith(value)

    return test


def _context(service: GraphService, call: _Call, what: str) -> str:
    return f"{service.base_url}/{call.version}/$metadata#{what}"


# --- managed devices ----------------------------------------------------------------------------------


def _device(service: GraphService, device_id: str) -> dict[str, Any]:
    device = service.state.devices.get(device_id)
    if device is None:
        raise GraphFailure(404, "ResourceNotFound", f"Resource not found: managedDevice {device_id}")
    return device.json


@_route("GET", _DEVICES, *_READ_DEVICES)
def _list_devices(service: GraphService, call: _Call, _: tuple[str, ...]) -> GraphResponse:
    keep = device_filter(call.query.get("$filter"))
    devices = [device.json for device in service.state.devices.values() if keep(device.json)]
    return service._page(call, devices, "deviceManagement/managedDevices")


@_route("GET", _DEVICES + "/" + _ID, *_READ_DEVICES)
def _get_device(service: GraphService, call: _Call, groups: tuple[str, ...]) -> GraphResponse:
    context = {"@odata.context": _context(service, call, "deviceManagement/managedDevices/$entity")}
    return GraphResponse(200, context | _selected(_device(service, groups[0]), call.query.get("$select")))


@_route("POST", _DEVICES + "/" + _ID + "/syncDevice", cfg.ROLE_DEVICES_PRIVILEGED)
def _sync_device(service: GraphService, call: _Call, groups: tuple[str, ...]) -> GraphResponse:
    _device(service, groups[0])
    service.state.request_sync(groups[0], call.now)
    return GraphResponse(204)


# --- device configurations ------------------------------------------------------------------------------


def _profile(service: GraphService, profile_id: str) -> dict[str, Any]:
    profile = service.state.profiles.get(profile_id)
    if profile is None:
        raise GraphFailure(404, "ResourceNotFound", f"Resource not found: deviceConfiguration {profile_id}")
    return profile


@_route("GET", _CONFIGS, *_READ_CONFIG)
def _list_profiles(service: GraphService, call: _Call, _: tuple[str, ...]) -> GraphResponse:
    wanted = None
    if text := call.query.get("$filter"):
        found = _ISOF.fullmatch(text.strip())
        if found is None:
            raise GraphFailure(400, "BadRequest", f"Invalid filter clause: {text}")
        wanted = f"#microsoft.graph.{found.group(1)}"
    profiles = [
        masked(profile, beta=call.beta)
        for profile in service.state.profiles.values()
        if wanted is None or profile["@odata.type"] == wanted
    ]
    if not call.beta:
        profiles = [p for p in profiles if wanted is None or p["@odata.type"] != NATIVE_TYPE]
    return service._page(call, profiles, "deviceManagement/deviceConfigurations")


@_route("GET", _CONFIGS + "/" + _ID, *_READ_CONFIG)
def _get_profile(service: GraphService, call: _Call, groups: tuple[str, ...]) -> GraphResponse:
    context = {"@odata.context": _context(service, call, "deviceManagement/deviceConfigurations/$entity")}
    return GraphResponse(200, context | masked(_profile(service, groups[0]), beta=call.beta))


@_route("PATCH", _CONFIGS + "/" + _ID, cfg.ROLE_CONFIG_WRITE)
def _patch_profile(service: GraphService, call: _Call, groups: tuple[str, ...]) -> GraphResponse:
    _profile(service, groups[0])
    if not isinstance(call.request.body, dict):
        raise GraphFailure(400, "BadRequest", "A PATCH needs a JSON object body.")
    try:
        service.state.patch_profile(groups[0], call.request.body, beta=call.beta)
    except ProfileError as exc:
        raise GraphFailure(400, "BadRequest", str(exc)) from None
    return GraphResponse(204)  # Intune answers 204 where the docs say 200 (by design, per Microsoft)


def _assignment_json(profile_id: str, target: str) -> dict[str, Any]:
    if target == cfg.ALL_DEVICES:
        return {
            "id": f"{profile_id}_adadadad-808e-44e2-905a-0b7873a8a531",
            "target": {"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"},
        }
    return {
        "id": f"{profile_id}_{target}",
        "target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": target},
    }


@_route("GET", _CONFIGS + "/" + _ID + "/assignments", *_READ_CONFIG)
def _assignments(service: GraphService, call: _Call, groups: tuple[str, ...]) -> GraphResponse:
    _profile(service, groups[0])
    value = [_assignment_json(groups[0], target) for target in service.state.assignments[groups[0]]]
    context = _context(service, call, f"deviceManagement/deviceConfigurations('{groups[0]}')/assignments")
    return GraphResponse(200, {"@odata.context": context, "value": value})


@_route("POST", _CONFIGS + "/" + _ID + "/assign", cfg.ROLE_CONFIG_WRITE)
def _assign(service: GraphService, call: _Call, groups: tuple[str, ...]) -> GraphResponse:
    _profile(service, groups[0])
    body = call.request.body
    entries = body.get("assignments") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        raise GraphFailure(400, "BadRequest", "assign needs an 'assignments' collection.")
    targets = tuple(_target_of(entry) for entry in entries)
    service.state.assign(groups[0], targets)
    return GraphResponse(200, {"value": [_assignment_json(groups[0], t) for t in targets]})


def _target_of(entry: object) -> str:
    target = entry.get("target") if isinstance(entry, dict) else None
    kind = target.get("@odata.type") if isinstance(target, dict) else None
    if kind == "#microsoft.graph.allDevicesAssignmentTarget":
        return cfg.ALL_DEVICES
    if (
        kind == "#microsoft.graph.groupAssignmentTarget"
        and isinstance(target, dict)
        and target.get("groupId")
    ):
        return str(target["groupId"])
    raise GraphFailure(400, "BadRequest", "Unsupported assignment target.")


@_route("GET", _CONFIGS + "/" + _ID + "/deviceStatuses", *_READ_CONFIG)
def _device_statuses(service: GraphService, call: _Call, groups: tuple[str, ...]) -> GraphResponse:
    _profile(service, groups[0])
    statuses = [
        {
            "id": f"{device.id}_{groups[0]}",
            "deviceDisplayName": device.json["deviceName"],
            "userName": device.json["userPrincipalName"].split("@")[0],
            "userPrincipalName": device.json["userPrincipalName"],
            "deviceModel": device.json["model"],
            "status": service.state.device_status(device, groups[0]),
            "lastReportedDateTime": device.json["lastSyncDateTime"],
        }
        for device in service.state.assigned_devices(groups[0])
    ]
    return service._page(
        call, statuses, f"deviceManagement/deviceConfigurations('{groups[0]}')/deviceStatuses"
    )


@_route(
    "GET",
    _CONFIGS + "/" + _ID + r"/getOmaSettingPlainTextValue\(secretReferenceValueId='([^']+)'\)",
    cfg.ROLE_CONFIG_WRITE,
)
def _plain_text(service: GraphService, call: _Call, groups: tuple[str, ...]) -> GraphResponse:
    value = plain_value(_profile(service, groups[0]), groups[1], service.state.secrets)
    if value is None:
        raise GraphFailure(
            404, "ResourceNotFound", f"Secret reference {groups[1]} not found on this configuration."
        )
    return GraphResponse(
        200, {"@odata.context": f"{service.base_url}/{call.version}/$metadata#Edm.String", "value": value}
    )


__all__ = ["MAX_BATCH", "GraphFailure", "GraphRequest", "GraphResponse", "GraphService", "device_filter"]
