"""The embedded default: the demo service, local processes as a platform, the built-in router.

Everything here runs on 127.0.0.1 with nothing but the Python package, so `releasedeck demo`
works on any Linux machine without Docker, Kubernetes or Prometheus.
"""
