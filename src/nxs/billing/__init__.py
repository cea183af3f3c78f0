"""Billing's domain core: money, prices, estimates, settlement, limits, plans.

Pure modules with no I/O; the store keeps balances and the ledger, the gateway calls
these on the hot path (see docs/billing-design.md).
"""
