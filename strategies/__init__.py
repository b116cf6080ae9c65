"""The brain of releasedeck: pure model, release spec, plans, gates and the rollout engine.

Nothing in this package touches the network or reads a clock: time is always passed in.
"""
