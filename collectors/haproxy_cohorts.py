"""HAProxy cohorts and sticky users: maps swapped atomically over the runtime API, no reload.

Server weights split requests, not people. For rings and A/B the frontend must know *who* asks,
so a spec with cohorts on `[router] kind = "haproxy"` names a backend per version
(`version_backends = {v1 = "checkout_v1", v2 = "checkout_v2"}`) and a directory of map files
(`maps = "run/maps"`). The frontend looks the request up in those maps, in order:

1. one map per cohort source (a header or a cookie a ring matches on): value → version backend;
2. the sticky map: HAProxy's own `crc32` of the user key, mod 100 → version backend, shared out
   by `strategies.cohorts.sticky_slots` (the built-in router's rule at percent resolution, with a
   per-release offset), so a user keeps their version while the candidate's share only grows;
3. nothing found (no cohort, no user key): the weighted backend, as before.

Each change replaces a whole map in one step (`prepare map`, `add map @N`, `commit map @N`):
a request never sees half a table. Stick tables are deliberately not used: they expire, a restart
empties them, and they cannot move users as the share grows; the hash is a pure function of the
key and the share, so it survives restarts of both HAProxy and releasedeck. HAProxy has no
mirroring: a dark step needs the built-in router or `[router] kind = "nginx"`.

The requests a version backend serves are that version's (HAProxyStats sums them with the
weighted backend's servers), so a ring's gates see exactly the ring's traffic on the candidate.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from strategies.cohorts import SLOTS, Route, UserKey, slot_offset, sticky_slots

VAR = "txn.releasedeck"
"""The transaction variable the frontend lines fill with the chosen version backend."""

CHUNK = 4000
"""Characters per runtime-API line: well under HAProxy's 16 kB request buffer."""


@dataclass(frozen=True)
class MapSource:
    """Where a cohort value is read: `header` or `cookie`, and its name."""

    kind: str  # "header" | "cookie"
    name: str

    def fetch(self) -> str:
        return f"req.hdr({self.name})" if self.kind == "header" else f"req.cook({self.name})"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "-", text.lower()).strip("-") or "x"


@dataclass(frozen=True)
class CohortMaps:
    """The map files of one weighted backend's cohort routing and the frontend lines using them.

    `directory` is the absolute path HAProxy loads the maps from: the runtime API names a map by
    the exact path its config gave, so both sides are written from this one object.
    """

    directory: str
    backend: str
    sources: tuple[MapSource, ...] = ()
    sticky: UserKey | None = None

    def path(self, source: MapSource) -> str:
        return str(PurePosixPath(self.directory) /
                   f"{_slug(self.backend)}.{source.kind}.{_slug(source.name)}.map")

    @property
    def sticky_path(self) -> str:
        return str(PurePosixPath(self.directory) / f"{_slug(self.backend)}.sticky.map")

    def paths(self) -> tuple[str, ...]:
        return (*(self.path(s) for s in self.sources), *((self.sticky_path,) if self.sticky else ()))

    def frontend_lines(self) -> list[str]:
        """The lines the frontend needs (before its `default_backend`); the map files must exist
        (empty is fine) when HAProxy starts."""
        lines = [f"# releasedeck cohorts for backend {self.backend}: maps changed over the "
                 "runtime API, never reload"]
        unset = f"!{{ var({VAR}) -m found }}"
        for i, source in enumerate(self.sources):
            cond = f" if {unset}" if i else ""
            lines.append(f"http-request set-var({VAR}) {source.fetch()},map({self.path(source)})"
                         f"{cond}")
        if self.sticky is not None:
            key = MapSource("header" if self.sticky.header else "cookie",
                            self.sticky.header or self.sticky.cookie).fetch()
            lines.append(f"http-request set-var({VAR}) {key},crc32,mod({SLOTS}),"
                         f"map_int({self.sticky_path}) if {unset} {{ {key},length gt 0 }}")
        lines.append(f"use_backend %[var({VAR})] if {{ var({VAR}) -m found }}")
        return lines

    def contents(self, route: Route, weights: Mapping[str, float] | None,
                 backends: Mapping[str, str]) -> dict[str, dict[str, str]]:
        """Every map's entries for `route` at `weights` (percent per version): key → backend.

        Rules are tried in order and the first match wins, as in the built-in router; a map the
        route does not use is emptied (a closed ring). Sticky slots need the weights: without
        them (None) the sticky map is left out, not emptied.
        """
        out: dict[str, dict[str, str]] = {self.path(s): {} for s in self.sources}
        for rule in route.cohorts:
            match = rule.match
            source = MapSource("header" if match.header else "cookie", match.header or match.cookie)
            entries = out.setdefault(self.path(source), {})
            for value in match.values:
                entries.setdefault(value, backends[rule.version])
        if self.sticky is not None:
            if route.sticky is None:
                out[self.sticky_path] = {}
            elif weights is not None:
                live = {v: w for v, w in weights.items() if v in backends}
                out[self.sticky_path] = {str(slot): backends[version] for slot, version in
                                         sticky_slots(live, slot_offset(route.salt)).items()}
        return out


def maps_for(directory: str, backend: str, matches: Sequence[tuple[str, str]],
             sticky: UserKey | None) -> CohortMaps:
    """A `CohortMaps` with one source per distinct (kind, name) in `matches`, in first-seen order."""
    seen: list[MapSource] = []
    for kind, name in matches:
        source = MapSource(kind, name)
        if source not in seen:
            seen.append(source)
    return CohortMaps(directory, backend, tuple(seen), sticky)


def update_commands(path: str, version: str, entries: Mapping[str, str]) -> list[str]:
    """Runtime-API lines that fill prepared map version `version` and commit it (chunked)."""
    adds = [f"add map @{version} {path} {key} {value}" for key, value in entries.items()]
    lines: list[str] = []
    current: list[str] = []
    size = 0
    for add in adds:
        if current and size + len(add) + 2 > CHUNK:
            lines.append("; ".join(current))
            current, size = [], 0
        current.append(add)
        size += len(add) + 2
    if current:
        lines.append("; ".join(current))
    lines.append(f"commit map @{version} {path}")
    return lines


def parse_show_map(text: str) -> dict[str, str]:
    """`show map FILE` rows (`0xADDR key value`) to key → value."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].startswith("0x"):
            out[parts[1]] = parts[2]
    return out
