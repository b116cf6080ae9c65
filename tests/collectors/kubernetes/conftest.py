"""Fixtures for the Kubernetes adapter tests (the harness itself lives in k8s_harness.py)."""

from k8s_harness import recorded  # noqa: F401
