"""Cohorts: who sees which version, decided per request from a header or cookie.

Weights alone say "10% of requests"; a release that lets staff see the candidate first, or an
experiment that must show each user one version only, needs to know *who* sends a request.
Three rules, all pure so every router (the built-in one, HAProxy maps, HTTPRoute header
matches) and the tests agree on them:

- a `CohortMatch` (`X-User-Group` in `staff`, or a cookie) sends a whole group to a version;
- a `UserKey` (a header or cookie naming the user) makes the weighted split *sticky*: the key
  hashes to one of 10,000 buckets and the buckets are handed to versions in name order, so a
  user keeps their version while the candidate's share only grows (buckets move one way);
- a `Mirror` copies a share of requests to a version whose answers are thrown away (dark launch).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

BUCKETS = 10_000
"""Sticky buckets: 0.01% resolution, enough for any step weight a plan can ask for."""


class CohortError(ValueError):
    """A cohort rule that cannot be used; the message is one line for people."""


def _name(data: Mapping[str, Any], what: str) -> tuple[str, str]:
    header, cookie = data.get("header", ""), data.get("cookie", "")
    if not isinstance(header, str) or not isinstance(cookie, str):
        raise CohortError(f"{what}: header and cookie must be strings")
    if bool(header) == bool(cookie):
        raise CohortError(f"{what}: give exactly one of header or cookie")
    return header.strip(), cookie.strip()


@dataclass(frozen=True)
class CohortMatch:
    """A request is in the cohort when its header (or cookie) has one of `values`."""

    header: str = ""
    cookie: str = ""
    values: tuple[str, ...] = ()

    def matches(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> bool:
        found = _lookup(headers, cookies, self.header, self.cookie)
        return found is not None and found in self.values

    def describe(self) -> str:
        where = f"header {self.header}" if self.header else f"cookie {self.cookie}"
        return f"{where} in ({', '.join(self.values)})"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"header": self.header} if self.header else {"cookie": self.cookie}
        out["values"] = list(self.values)
        return out

    @classmethod
    def from_dict(cls, data: Any, what: str = "match") -> CohortMatch:
        if not isinstance(data, Mapping):
            raise CohortError(f'{what}: must be a table like {{ header = "X-User-Group", '
                              f'values = ["staff"] }}')
        header, cookie = _name(data, what)
        values = data.get("values")
        if not isinstance(values, list | tuple) or not values or not all(
                isinstance(v, str) and v for v in values):
            raise CohortError(f"{what}.values: must be a non-empty list of strings")
        unknown = set(data) - {"header", "cookie", "values"}
        if unknown:
            raise CohortError(f"{what}: unknown key(s) {', '.join(sorted(unknown))}")
        return cls(header=header, cookie=cookie, values=tuple(values))


@dataclass(frozen=True)
class CohortRule:
    """A named cohort sent to `version` whatever the weights say."""

    name: str
    match: CohortMatch
    version: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "match": self.match.to_dict(), "version": self.version}

    @classmethod
    def from_dict(cls, data: Any, what: str = "cohort") -> CohortRule:
        if not isinstance(data, Mapping):
            raise CohortError(f"{what}: must be an object with name, match and version")
        name, version = data.get("name", ""), data.get("version", "")
        if not isinstance(name, str) or not name or not isinstance(version, str) or not version:
            raise CohortError(f"{what}: name and version must be non-empty strings")
        return cls(name=name, match=CohortMatch.from_dict(data.get("match"), f"{what}.match"),
                   version=version)


@dataclass(frozen=True)
class UserKey:
    """Where a request names its user (a header or a cookie): the key of sticky assignment."""

    header: str = ""
    cookie: str = ""

    def of(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> str | None:
        found = _lookup(headers, cookies, self.header, self.cookie)
        return found or None

    def describe(self) -> str:
        return f"header {self.header}" if self.header else f"cookie {self.cookie}"

    def to_dict(self) -> dict[str, str]:
        return {"header": self.header} if self.header else {"cookie": self.cookie}

    @classmethod
    def from_dict(cls, data: Any, what: str = "sticky") -> UserKey:
        if not isinstance(data, Mapping):
            raise CohortError(f'{what}: must be a table like {{ header = "X-User-Id" }}')
        unknown = set(data) - {"header", "cookie"}
        if unknown:
            raise CohortError(f"{what}: unknown key(s) {', '.join(sorted(unknown))}")
        header, cookie = _name(data, what)
        return cls(header=header, cookie=cookie)


@dataclass(frozen=True)
class Mirror:
    """Copy `percent` of the requests served by other versions to `version`; drop its answers."""

    version: str
    percent: float

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "percent": self.percent}

    @classmethod
    def from_dict(cls, data: Any, what: str = "mirror") -> Mirror | None:
        if data is None:
            return None
        if not isinstance(data, Mapping):
            raise CohortError(f'{what}: must be an object like {{"version": "v2", "percent": 10}}')
        version, percent = data.get("version", ""), data.get("percent", 0)
        if not isinstance(version, str) or not version:
            raise CohortError(f"{what}.version: must be a non-empty string")
        if isinstance(percent, bool) or not isinstance(percent, int | float) \
                or not 0 <= percent <= 100:
            raise CohortError(f"{what}.percent: must be 0..100, got {percent!r}")
        return cls(version=version, percent=float(percent)) if percent > 0 else None


@dataclass(frozen=True)
class Route:
    """Everything a cohort-aware router needs beside the weights: rules, user key, mirror."""

    cohorts: tuple[CohortRule, ...] = ()
    sticky: UserKey | None = None
    salt: str = ""  # per release, so the same users are not always the first to try things
    mirror: Mirror | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"cohorts": [c.to_dict() for c in self.cohorts],
                "sticky": self.sticky.to_dict() if self.sticky else None,
                "salt": self.salt,
                "mirror": self.mirror.to_dict() if self.mirror else None}

    @classmethod
    def from_dict(cls, data: Any) -> Route:
        if not isinstance(data, Mapping):
            raise CohortError("route must be a JSON object with cohorts, sticky, salt, mirror")
        unknown = set(data) - {"cohorts", "sticky", "salt", "mirror"}
        if unknown:
            raise CohortError(f"route: unknown key(s) {', '.join(sorted(unknown))}")
        cohorts = data.get("cohorts") or []
        if not isinstance(cohorts, list):
            raise CohortError("route.cohorts: must be a list")
        sticky = data.get("sticky")
        salt = data.get("salt", "")
        if not isinstance(salt, str):
            raise CohortError("route.salt: must be a string")
        return cls(cohorts=tuple(CohortRule.from_dict(c, f"route.cohorts[{i}]")
                                 for i, c in enumerate(cohorts)),
                   sticky=UserKey.from_dict(sticky, "route.sticky") if sticky else None,
                   salt=salt, mirror=Mirror.from_dict(data.get("mirror"), "route.mirror"))


def _lookup(headers: Mapping[str, str], cookies: Mapping[str, str], header: str,
            cookie: str) -> str | None:
    if header:
        value = headers.get(header)
        return value.strip() if value is not None else None
    value = cookies.get(cookie)
    return value.strip() if value is not None else None


def bucket(key: str, salt: str = "") -> int:
    """The sticky bucket (0..BUCKETS-1) of a user key: stable across processes and machines."""
    digest = hashlib.blake2b(f"{salt}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def sticky_version(slot: int, weights: Mapping[str, float]) -> str | None:
    """The version owning bucket `slot` when buckets are shared out by weight in name order.

    Name order, not dict order, so every router and every restart agrees. With two versions a
    growing share for one only moves buckets towards it, so nobody flips back and forth.
    """
    live = sorted((v, w) for v, w in weights.items() if w > 0)
    total = sum(w for _, w in live)
    if total <= 0:
        return None
    edge = 0.0
    for version, weight in live:
        edge += weight * BUCKETS / total
        if slot < edge:
            return version
    return live[-1][0]


def first_match(rules: tuple[CohortRule, ...], headers: Mapping[str, str],
                cookies: Mapping[str, str]) -> CohortRule | None:
    """The first rule whose cohort the request is in (rules are tried in order)."""
    for rule in rules:
        if rule.match.matches(headers, cookies):
            return rule
    return None


class MirrorPicker:
    """Deterministic share: of every 100 requests offered, exactly `percent` are mirrored."""

    def __init__(self, percent: float = 0.0):
        self.percent = percent
        self._credit = 0.0

    def set(self, percent: float) -> None:
        self.percent = percent
        self._credit = 0.0

    def pick(self) -> bool:
        if self.percent <= 0:
            return False
        self._credit += self.percent
        if self._credit >= 100.0:
            self._credit -= 100.0
            return True
        return False


SLOTS = 100
"""Sticky slots for a router that cannot hash into 10,000 buckets itself (HAProxy maps): whole
percents, so every integer step weight is exact. Slot s stands for buckets s·100 … s·100+99."""


def slot_offset(salt: str) -> int:
    """The per-release turn of the slot ring (0..SLOTS-1), so a new release does not always try
    the same users first; derived from the salt the built-in router uses."""
    return bucket("offset", salt) % SLOTS


def sticky_slots(weights: Mapping[str, float], offset: int = 0) -> dict[int, str]:
    """The version each raw slot (a router's own hash of the user key, mod SLOTS) is routed to.

    The same rule as `sticky_version` at percent resolution: raw slot r is shifted by the
    release's `offset` and then owned by name order and weight, so as one of two versions' share
    grows its slots only ever gain users (nobody is sent back). Empty when nothing has weight.
    """
    out: dict[int, str] = {}
    for raw in range(SLOTS):
        version = sticky_version(((raw + offset) % SLOTS) * (BUCKETS // SLOTS), weights)
        if version is None:
            return {}
        out[raw] = version
    return out
