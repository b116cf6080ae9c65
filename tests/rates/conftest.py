"""Fixtures for the rates tests: a real Prometheus server."""

from tests.support.prometheus import prometheus_server  # noqa: F401
