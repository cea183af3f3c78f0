"""Persistent state: schema, migrations and repositories. SQLite by default; the
domain code sees only `Store` and the records in `models`, so PostgreSQL can follow.
"""
