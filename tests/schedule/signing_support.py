"""Building task messages by hand for the signing tests: signed as the real app signs them (celery's
``SecureSerializer`` with a given key), or forged the ways an attacker with broker access could
(unsigned, tampered, re-routed, replayed, expired, signed by an untrusted key), and published raw
to a queue. Nothing here touches kombu's global serializer registry."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Celery
from celery.security.certificate import Certificate, FSCertStore
from celery.security.key import PrivateKey
from celery.security.serialization import SecureSerializer
from celery.utils.serialization import b64decode, b64encode
from kombu.connection import Connection
from kombu.entity import Queue

from tasks.signing import ENVELOPE_KEY, make_envelope
from tests.schedule.certs import Signer

SEPARATOR = b"\x00\x01"


def secure_serializer(signer: Signer, store: str) -> SecureSerializer:
    return SecureSerializer(
        PrivateKey(signer.key.read_text()),
        Certificate(signer.certificate.read_text()),
        FSCertStore(store),
        "sha256",
        "json",
    )


@dataclass
class Message:
    """A protocol-2 task message: headers, properties and the body (args, kwargs, embed)."""

    headers: dict[str, Any]
    properties: dict[str, Any]
    body: list[Any]
    raw: bytes = b""
    content_type: str = "application/data"
    label: str = field(default="")

    @property
    def id(self) -> str:
        return str(self.headers["id"])


def message(
    task: str,
    kwargs: dict[str, Any],
    *,
    task_id: str | None = None,
    envelope: bool = True,
    deadline_in: timedelta = timedelta(hours=1),
    envelope_task: str | None = None,
) -> Message:
    """A message for ``task`` as make_app's publisher builds it (the envelope in the kwargs)."""
    task_id = task_id or str(uuid.uuid4())
    body_kwargs = dict(kwargs)
    if envelope:
        now = datetime.now(UTC)
        stamp = make_envelope(
            envelope_task or task,
            task_id,
            body_kwargs,
            expires=None,
            now=now - timedelta(hours=2) + deadline_in,
            max_age=timedelta(hours=2),
        )
        body_kwargs[ENVELOPE_KEY] = stamp.to_json()
    plain = Celery("fleetfix-test-forger", set_as_current=False)
    made = plain.amqp.as_task_v2(task_id, task, (), body_kwargs)
    headers, properties, body, _sent = made
    return Message(dict(headers), dict(properties), list(body))


def sign(message: Message, serializer: SecureSerializer) -> Message:
    message.raw = serializer.serialize(message.body)
    message.content_type = "application/data"
    return message


def unsigned(message: Message) -> Message:
    message.raw = json.dumps(message.body).encode()
    message.content_type = "application/json"
    return message


def tamper(message: Message, old: str, new: str) -> Message:
    """Change the signed JSON inside an already signed payload (the signature no longer fits)."""
    fields = b64decode(message.raw).split(SEPARATOR, 4)
    fields[4] = fields[4].replace(old.encode(), new.encode())
    message.raw = b64encode(SEPARATOR.join(fields))
    return message


def publish(url: str, queue: str, *messages: Message) -> None:
    target = Queue(queue, routing_key=queue)  # type: ignore[no-untyped-call]
    with Connection(url, connect_timeout=10) as connection:  # type: ignore[no-untyped-call]
        producer = connection.Producer()
        for item in messages:
            producer.publish(
                item.raw,
                exchange="",
                routing_key=queue,
                declare=[target],
                content_type=item.content_type,
                content_encoding="utf-8",
                headers=item.headers,
                retry=True,
                **item.properties,
            )
