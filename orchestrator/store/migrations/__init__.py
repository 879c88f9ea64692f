"""Alembic migrations for the fleetfix store, configured from code (see ``orchestrator.store.migrate``).

To add a revision after changing ``orchestrator/store/models.py``::

    python -c "from orchestrator.store.migrate import upgrade, make_revision; \
        upgrade('sqlite:///scratch.db'); make_revision('sqlite:///scratch.db', 'what changed')"

then review the file in ``versions/``: replace application types with plain SQLAlchemy ones so the
revision never changes meaning when the models do, and add what autogenerate cannot see (CHECK
constraints, triggers, data).
"""
