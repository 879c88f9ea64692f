"""Celery entry points: thin wrappers over orchestrator.engine (filled in with the Celery executor)."""
