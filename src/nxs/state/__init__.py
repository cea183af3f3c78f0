"""What workers and replicas share: limits, upstream-key cooldowns and loads, idempotency
markers and change notices — one interface (`nxs.state.interface.State`), three backends:
in-process (one worker), SQLite (the workers of one machine) and Redis (every replica).
"""
