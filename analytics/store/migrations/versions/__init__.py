"""Alembic revisions of the aggregate store (files are named ``rNNNN_<what>.py``)."""
