"""Prometheus text exposition, read in one place with one error for answers that are not it.

Every reader of a /metrics answer (instances' scrape, HAProxy's exporter, the local router's
`/-/metrics`) may be handed something else: a web page, a plain-text body of another server on
that address, half an answer. prometheus_client's parser then raises whatever its code hit
(ValueError, IndexError, KeyError) from deep inside a lazy generator. `families` parses the whole
text at once and turns any of those into `ExpositionError` with one line for people, so callers
catch one type and a rollout holds on stale data instead of a traceback.

The scrape reads every instance each tick, and prometheus_client's parser walks each label
character by character (about a third of the driver's tick). `_plain_families` reads the plain
form nearly every exporter writes (one space between parts, label values without escapes, no
timestamps or exemplars) with one regular expression per line and groups the samples into
families exactly as prometheus_client does; any other line hands the whole text to
prometheus_client, so the answer (or the error) is always the reference parser's.
"""

from __future__ import annotations

import re

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

SHOWN = 40
"""How much of a bad answer the error line quotes."""

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_PAIR = r'[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"'
_SAMPLE = re.compile(rf"({_NAME})(?:\{{((?:{_PAIR})(?:,{_PAIR})*,?)?\}})? (\S+)")
_LABELS = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"\\]*)"')
_HELP = re.compile(rf"# HELP ({_NAME})(?: ([^\s\\][^\\]*))?")
_TYPE = re.compile(rf"# TYPE ({_NAME}) (counter|gauge|histogram|summary|untyped)")
_ALLOWED = {"counter": ("",), "gauge": ("",), "summary": ("_count", "_sum", ""),
            "histogram": ("_count", "_sum", "_bucket")}


class ExpositionError(RuntimeError):
    """An answer that is not Prometheus text format; the message is one line for people."""


def families(text: str, where: str = "") -> list[Metric]:
    """All metric families of `text`; `ExpositionError` (naming `where`) if it is not that format."""
    plain = _plain_families(text)
    if plain is not None:
        return plain
    try:
        return list(text_string_to_metric_families(text))
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        head = " ".join(text.split())[:SHOWN]
        prefix = f"{where}: " if where else ""
        raise ExpositionError(f"{prefix}answered something that is not Prometheus text format "
                              f"({head!r})") from exc


def _metric(name: str, documentation: str, typ: str, samples: list[Sample]) -> Metric:
    """prometheus_client's `build_metric`: a counter's family drops `_total` from its name,
    and a counter declared without it gets `_total` on its samples."""
    if typ == "counter":
        if name.endswith("_total"):
            name = name[:-6]
        else:
            samples = [s._replace(name=s.name + "_total") for s in samples]
    metric = Metric(name, documentation, typ)
    metric.samples = samples
    return metric


def _sample(line: str) -> Sample | None:
    """One sample line in the plain form, or None for anything else."""
    match = _SAMPLE.fullmatch(line)
    if match is None:
        return None
    name, inside, token = match.groups()
    labels: dict[str, str] = {}
    if inside:
        for label, value in _LABELS.findall(inside):
            if label in labels or label.startswith("__"):
                return None  # a duplicate or reserved label: the reference parser says what
            labels[label] = value
    if "_" in token:
        return None
    try:
        value: float = int(token)
    except ValueError:
        try:
            value = float(token)
        except ValueError:
            return None
    return Sample(name, labels, value, None)


class _Reader:
    """prometheus_client's `text_fd_to_metric_families` state machine over plain lines."""

    def __init__(self) -> None:
        self.out: list[Metric] = []
        self.name, self.documentation, self.typ = "", "", "untyped"
        self.samples: list[Sample] = []
        self.allowed: tuple[str, ...] = ()

    def _start(self, name: str) -> None:
        if self.name != "":
            self.out.append(_metric(self.name, self.documentation, self.typ, self.samples))
        self.name, self.samples = name, []

    def help(self, name: str, documentation: str) -> None:
        if name != self.name:
            self._start(name)
            self.typ, self.allowed = "untyped", (name,)
        self.documentation = documentation

    def type(self, name: str, typ: str) -> None:
        if name != self.name:
            self._start(name)
            self.documentation = ""
        self.typ = typ
        self.allowed = tuple(name + end for end in _ALLOWED.get(typ, ("",)))

    def sample(self, sample: Sample) -> None:
        if sample.name in self.allowed:
            self.samples.append(sample)
            return
        self._start("")
        self.documentation, self.typ, self.allowed = "", "untyped", ()
        self.out.append(_metric(sample.name, "", "untyped", [sample]))

    def done(self) -> list[Metric]:
        self._start("")
        return self.out


def _plain_families(text: str) -> list[Metric] | None:
    """The families of a text in the plain form, or None: then prometheus_client reads it."""
    reader = _Reader()
    for raw in text.split("\n"):
        line = raw.strip()
        if not line:
            continue
        if line[0] == "#":
            if "HELP" not in line and "TYPE" not in line:
                continue  # a comment
            found = _HELP.fullmatch(line)
            if found is not None:
                reader.help(found[1], found[2] or "")
                continue
            found = _TYPE.fullmatch(line)
            if found is None:
                return None
            reader.type(found[1], found[2])
            continue
        sample = _sample(line)
        if sample is None:
            return None
        reader.sample(sample)
    return reader.done()
