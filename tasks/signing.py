"""Optional message signing for the Celery app: celery's ``auth`` serializer plus fleetfix's own
envelope inside the signed body.

With ``[signing]`` configured (docs/deploy.md, "Message signing"), :func:`configure_signing`:

* switches the app to the ``auth`` serializer: every task message body is signed with this
  process's RSA key (``key_file``, its ``certificate``) and a worker accepts only bodies signed by a
  certificate in ``cert_store`` (a directory of ``*.pem``); ``accept_content = ["auth"]``, so an
  unsigned message is refused before anything looks at it (Celery logs ``ContentDisallowed``);
* puts an **envelope** into every message it sends, inside the signed kwargs (``_fleetfix``): the
  task's name, the message's task id, the run id (when the task has one), when it was issued and
  its **deadline** (the message's ``expires``, else ``max_age_s`` from now). Celery signs only the
  body; the task name, id and ``expires`` travel in unsigned headers, so someone with write access
  to the broker could point a signed body at another task, replay it under a new id, or strip its
  expiry. The envelope is signed, so the worker checks it against the headers;
* wraps every task of the app (an ``@__call__`` task annotation) so that, before the task body
  runs, the envelope is checked: a message whose envelope is missing, names another task or task
  id, or whose deadline has passed is **rejected** (``Reject``, not re-queued) with an ERROR line
  ``fleetfix.signing: rejected TASK[ID]: REASON; it was not run``, and never executed.

Signing does not encrypt (anyone reading the broker reads the messages; they carry names and
references, never secrets) and it does not stop a replay of the *same* message under the same id
before its deadline: the store's ledgers make a duplicate delivery harmless (docs/celery.md).

``setup_security`` changes kombu's serializer registry for the whole process (Celery's own design):
one process, one signing identity.
"""

from __future__ import annotations

import inspect
import logging
import numbers
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from orchestrator.config import Settings, SigningSettings
from orchestrator.errors import ConfigError

log = logging.getLogger("fleetfix.signing")

ENVELOPE_KEY = "_fleetfix"
"""The keyword argument that carries the envelope in a signed message's body."""
ENVELOPE_VERSION = 1
_TRUSTED_GLOB = "*.pem"


# --- the envelope (pure) --------------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    """What a signed message says about itself; checked against the headers it arrives with."""

    task: str
    id: str
    run_id: str | None
    issued_at: datetime
    deadline: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "v": ENVELOPE_VERSION,
            "task": self.task,
            "id": self.id,
            "run_id": self.run_id,
            "issued_at": self.issued_at.isoformat(),
            "deadline": self.deadline.isoformat(),
        }

    @classmethod
    def from_json(cls, data: object) -> Envelope:
        """The envelope in a message; ValueError when it is not one."""
        if not isinstance(data, Mapping) or data.get("v") != ENVELOPE_VERSION:
            raise ValueError("no fleetfix envelope in the signed body")
        try:
            issued = datetime.fromisoformat(str(data["issued_at"]))
            deadline = datetime.fromisoformat(str(data["deadline"]))
            run_id = data.get("run_id")
            task, task_id = data["task"], data["id"]
        except (KeyError, ValueError, TypeError):
            raise ValueError("a malformed fleetfix envelope") from None
        if (
            issued.tzinfo is None
            or deadline.tzinfo is None
            or not isinstance(task, str)
            or not isinstance(task_id, str)
        ):
            raise ValueError("a malformed fleetfix envelope")
        return cls(task, task_id, run_id if isinstance(run_id, str) else None, issued, deadline)


def deadline_of(expires: object, now: datetime, max_age: timedelta) -> datetime:
    """A message's deadline: its ``expires`` (seconds from now, a datetime or ISO text) when that
    is sooner than ``max_age`` from now, else ``now + max_age``."""
    latest = now + max_age
    if expires is None:
        return latest
    if isinstance(expires, numbers.Real) and not isinstance(expires, bool):
        at = now + timedelta(seconds=float(expires))
    elif isinstance(expires, datetime):
        at = expires if expires.tzinfo is not None else expires.replace(tzinfo=UTC)
    elif isinstance(expires, str):
        parsed = datetime.fromisoformat(expires)
        at = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    else:
        return latest
    return min(at.astimezone(UTC), latest)


def make_envelope(
    task: str,
    task_id: str,
    kwargs: Mapping[str, Any],
    *,
    expires: object,
    now: datetime,
    max_age: timedelta,
) -> Envelope:
    """The envelope for a message about to be sent. A message sent again for the same task id (a
    retry) keeps the first deadline: a retry must not outlive the change window it was sent in."""
    deadline = deadline_of(expires, now, max_age)
    try:
        previous = Envelope.from_json(kwargs.get(ENVELOPE_KEY))
    except ValueError:
        previous = None
    if previous is not None and previous.id == task_id and previous.task == task:
        deadline = min(deadline, previous.deadline)
    run_id = kwargs.get("run_id")
    return Envelope(task, task_id, run_id if isinstance(run_id, str) else None, now, deadline)


def rejection(envelope: object, *, task: str, task_id: str | None, now: datetime) -> str | None:
    """Why a received message must not run (None: it may). ``task`` and ``task_id`` are what the
    unsigned headers say; the envelope is what was signed."""
    try:
        signed = Envelope.from_json(envelope)
    except ValueError as exc:
        return str(exc)
    if signed.task != task:
        return f"the signed body is for task {signed.task}, the message asks for {task} (re-routed)"
    if task_id is not None and signed.id != task_id:
        return f"the signed body is for task id {signed.id}, the message carries {task_id} (replayed)"
    if now >= signed.deadline:
        return f"its deadline {signed.deadline.isoformat()} has passed"
    return None


# --- the app ---------------------------------------------------------------------------------------


class SigningError(ConfigError):
    """The signing material cannot be used (missing, unreadable, expired, not RSA)."""


def _readable_file(path: Path, field: str) -> Path:
    if not path.is_file():
        raise SigningError("file not found", field=field)
    return path


def _check_key_file(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SigningError(
            f"the private key {path} is accessible by group or others (mode {mode:04o}); chmod 600 it",
            field="signing.key_file",
        )


def _key_password(
    signing: SigningSettings, settings: Settings, environ: Mapping[str, str] | None
) -> bytes | None:
    if signing.key_password is None:
        return None
    from orchestrator.credentials.resolve import resolve_credential  # noqa: PLC0415
    from orchestrator.credentials.vault import Vault  # noqa: PLC0415

    vault = Vault.from_settings(settings, environ) if signing.key_password.startswith("vault:") else None
    credential = resolve_credential(signing.key_password, username="signing", vault=vault, environ=environ)
    return credential.secret.reveal().encode("utf-8")


def _trusted_certificates(store: Path) -> list[Path]:
    if not store.is_dir():
        raise SigningError("not a directory of trusted certificates (*.pem)", field="signing.cert_store")
    found = sorted(store.glob(_TRUSTED_GLOB))
    if not found:
        raise SigningError(
            f"no {_TRUSTED_GLOB} in {store}: no signer would be trusted", field="signing.cert_store"
        )
    return found


def _check_certificates(signing: SigningSettings, now: datetime) -> None:
    """Say which certificate is the problem before Celery says ``SecurityError`` about one of them."""
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: PLC0415

    assert signing.certificate is not None
    assert signing.cert_store is not None
    files = [("signing.certificate", signing.certificate)]
    files += [("signing.cert_store", path) for path in _trusted_certificates(signing.cert_store)]
    for field, path in files:
        try:
            certificate = x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError):
            raise SigningError(f"{path} is not a PEM certificate", field=field) from None
        if not isinstance(certificate.public_key(), rsa.RSAPublicKey):
            raise SigningError(f"{path}: Celery signs with RSA keys only", field=field)
        if certificate.not_valid_after_utc <= now:
            until = certificate.not_valid_after_utc.isoformat()
            raise SigningError(
                f"{path} expired on {until}; renew it (an expired certificate stops every worker)",
                field=field,
            )
        if certificate.not_valid_after_utc <= now + timedelta(days=30):
            log.warning(
                "signing certificate %s expires on %s: renew it", path, certificate.not_valid_after_utc
            )


def configure_signing(app: Any, settings: Settings, *, environ: Mapping[str, str] | None = None) -> None:
    """Turn on message signing for ``app`` when ``settings`` ask for it; otherwise change nothing.

    Called once per app, after every other setting is in place, by the producer (CLI, beat) and by
    workers alike: both ends of the broker must agree on the serializer. A ConfigError (naming the
    ``signing.*`` field, never the key or its password) when the material cannot be used.
    """
    signing = settings.signing
    if not signing.enabled:
        return
    assert signing.key_file is not None
    assert signing.certificate is not None
    assert signing.cert_store is not None
    _check_key_file(_readable_file(signing.key_file, "signing.key_file"))
    _readable_file(signing.certificate, "signing.certificate")
    _check_certificates(signing, datetime.now(UTC))
    password = _key_password(signing, settings, environ)
    app.conf.update(
        security_key=str(signing.key_file),
        security_key_password=password,
        security_certificate=str(signing.certificate),
        security_cert_store=str(signing.cert_store / _TRUSTED_GLOB),
        security_digest=signing.digest,
        task_serializer="auth",
        accept_content=["auth"],
        # worker events and remote control (Flower, `celery inspect`) are signed too
        event_serializer="auth",
        # results (when a result backend is configured) stay JSON: they come from the workers,
        # carry no instructions, and are read with result_accept_content
        result_serializer="json",
        result_accept_content=["json"],
    )
    _annotate(app)
    _stamp_envelopes(app, timedelta(seconds=signing.max_age_s))
    from celery.exceptions import ImproperlyConfigured, SecurityError  # noqa: PLC0415

    try:
        # json stays decodable where kombu is asked without an accept list (result backends)
        app.setup_security(
            allowed_serializers=["application/json", "application/data"], digest=signing.digest
        )
    except (SecurityError, ImproperlyConfigured, ValueError, OSError) as exc:
        # Celery's messages name files and certificate ids, not key material
        raise SigningError(f"cannot set up message signing: {exc}", field="signing") from None
    log.info("message signing on: signed with %s, trusting %s", signing.certificate, signing.cert_store)


def _annotate(app: Any) -> None:
    """Check every task's envelope before its body runs (applied when the app's tasks are bound)."""
    existing = app.conf.task_annotations
    if existing is None:
        annotations: list[Any] = []
    elif isinstance(existing, list | tuple):
        annotations = list(existing)
    else:
        annotations = [existing]
    app.conf.task_annotations = [{"*": {"@__call__": verifying_call}}, *annotations]


def verifying_call(call: Callable[..., Any]) -> Callable[..., Any]:
    """The ``@__call__`` annotation: pop and check the envelope, then call the task as usual."""
    from celery.exceptions import Reject  # noqa: PLC0415

    def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:
        envelope = kwargs.pop(ENVELOPE_KEY, None)
        request = getattr(self, "request", None)
        task_id = getattr(request, "id", None)
        reason = rejection(envelope, task=self.name, task_id=task_id, now=datetime.now(UTC))
        if reason is not None:
            log.error("rejected %s[%s]: %s; it was not run", self.name, task_id, reason)
            raise Reject(f"fleetfix envelope: {reason}", requeue=False)
        return call(self, *args, **kwargs)

    return __call__


def _stamp_envelopes(app: Any, max_age: timedelta) -> None:
    """Add the envelope to every message this app sends (``app.send_task`` and ``apply_async``
    both build their message with ``app.amqp.create_task_message``)."""
    amqp = app.amqp
    original = amqp.create_task_message
    signature = inspect.signature(original)

    def create_task_message(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        task_id, name = bound.arguments["task_id"], bound.arguments["name"]
        body = dict(bound.arguments.get("kwargs") or {})
        now = datetime.now(UTC)
        envelope = make_envelope(
            name, task_id, body, expires=bound.arguments.get("expires"), now=now, max_age=max_age
        )
        body[ENVELOPE_KEY] = envelope.to_json()
        bound.arguments["kwargs"] = body
        return original(*bound.args, **bound.kwargs)

    amqp.create_task_message = create_task_message


__all__ = [
    "ENVELOPE_KEY",
    "Envelope",
    "SigningError",
    "configure_signing",
    "deadline_of",
    "make_envelope",
    "rejection",
    "verifying_call",
]
