"""Fixtures for the demo's end-to-end tests: the shared real HTTP receiver and dead port."""

from tests.support.receiver import dead_url, receiver  # noqa: F401
