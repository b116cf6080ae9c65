"""Prometheus text exposition, read in one place with one error for answers that are not it.

Every reader of a /metrics answer (instances' scrape, HAProxy's exporter, the local router's
`/-/metrics`) may be handed something else: a web page, a plain-text body of another server on
that address, half an answer. prometheus_client's parser then raises whatever its code hit
(ValueError, IndexError, KeyError) from deep inside a lazy generator. `families` parses the whole
text at once and turns any of those into `ExpositionError` with one line for people, so callers
catch one type and a rollout holds on stale data instead of a traceback.
"""

from __future__ import annotations

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

SHOWN = 40
"""How much of a bad answer the error line quotes."""


class ExpositionError(RuntimeError):
    """An answer that is not Prometheus text format; the message is one line for people."""


def families(text: str, where: str = "") -> list[Metric]:
    """All metric families of `text`; `ExpositionError` (naming `where`) if it is not that format."""
    try:
        return list(text_string_to_metric_families(text))
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        head = " ".join(text.split())[:SHOWN]
        prefix = f"{where}: " if where else ""
        raise ExpositionError(f"{prefix}answered something that is not Prometheus text format "
                              f"({head!r})") from exc
