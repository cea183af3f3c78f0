"""The customer portal at `/portal`: invitations and sign-up, overview, keys, usage, prices,
a quickstart, and (with Stripe configured) top-ups and plan subscriptions.
"""
