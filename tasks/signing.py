"""Optional message signing for the Celery app (celery's ``auth`` serializer).

:func:`tasks.app.make_app` calls :func:`configure_signing` after it has applied every other setting,
so signing can switch the serializers (``task_serializer="auth"``, ``accept_content=["auth"]``) and
call ``app.setup_security()`` last. This body is a stub that leaves the app as it is (JSON, unsigned);
the signing work replaces it.
"""

from __future__ import annotations

from typing import Any

from orchestrator.config import Settings


def configure_signing(app: Any, settings: Settings) -> None:
    """Turn on message signing for ``app`` when ``settings`` ask for it; otherwise change nothing.

    Called once per app, after every other setting is in place, by the producer (CLI, beat) and by
    workers alike: both ends of the broker must agree on the serializer.
    """
    del app, settings


__all__ = ["configure_signing"]
