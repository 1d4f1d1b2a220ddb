"""Alembic migrations of the aggregate store; ``AggregateStore(url)`` runs them to head."""
