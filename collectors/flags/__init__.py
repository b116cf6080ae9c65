"""Feature-flag levers: the share of users who get the new code path, set and read back.

A flag release runs one deployment that holds both code paths; a flag system decides per user
which one runs. These levers satisfy `strategies.ports.TrafficRouter`: the "weights" they set
and report are the variants' shares of users, so the engine, reconcile and the screen treat a
flag ramp like any other weight. Kinds: `flagd` (a flagd flag-definition file, the embedded
default) and `unleash` (an Unleash server's Admin API).
"""
