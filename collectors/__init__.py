"""Adapters to the outside world: platforms, metric sources, traffic routers, alert sinks."""
