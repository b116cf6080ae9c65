"""The `flagd` lever: releasedeck owns one flag of a flagd flag-definition JSON file.

The flag's targeting is flagd's `fractional` operation bucketed on the flag key and the
evaluation's `targetingKey`, with the candidate's bucket first: raising its share only adds
users to it, so a user who got the new path keeps it while the ramp grows (sticky). The file
is exactly flagd's format, so the OpenFeature flagd provider in file mode, a flagd daemon or the
OpenFeature Operator can serve it. Every write goes to a temp file in the same directory and is
renamed over the old one, so a reader never sees half a file.

    share 0 with kill_switch   -> "state": "DISABLED" (everyone gets the default, the baseline)
    share 100 with drop_targeting -> defaultVariant = candidate, no targeting left
    otherwise                  -> {"fractional": [[candidate, share], [baseline, 100 - share]]}
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strategies.ports import PlatformError
from strategies.spec import ReleaseSpec

SCHEMA = "https://flagd.dev/schema/v0/flags.json"
BUCKET_BY: Mapping[str, Any] = {"cat": [{"var": "$flagd.flagKey"}, {"var": "targetingKey"}]}
"""flagd's own default for `fractional`, written out so a reader sees what users are bucketed on."""


class FlagFileError(PlatformError):
    """The flag file cannot be read, written or understood; one line naming file and reason."""


@dataclass(frozen=True)
class FlagShape:
    """What releasedeck writes for one flag: who the variants are and the candidate's share."""

    flag: str
    baseline: str  # variant name, value false: the code path that runs today
    candidate: str  # variant name, value true: the new code path
    share: int  # percent of users (by targetingKey) who get the candidate
    enabled: bool = True
    drop_targeting: bool = False  # at 100 %: no targeting, the candidate is the default

    def definition(self) -> dict[str, Any]:
        """The flag as flagd's flag-definition format writes it."""
        flag: dict[str, Any] = {
            "state": "ENABLED" if self.enabled else "DISABLED",
            "variants": {self.baseline: False, self.candidate: True},
            "defaultVariant": self.baseline,
            "metadata": {"managedBy": "releasedeck", "share": self.share},
        }
        if self.drop_targeting and self.share >= 100:
            flag["defaultVariant"] = self.candidate
        else:
            flag["targeting"] = {"fractional": [dict(BUCKET_BY), [self.candidate, self.share],
                                                [self.baseline, 100 - self.share]]}
        return flag


def shape(flag: str, baseline: str, candidate: str, share: int, *, kill_switch: bool = False,
          drop_targeting: bool = False) -> FlagShape:
    """The flag for a wanted share: the kill switch disables it at 0, drop_targeting cleans up at 100."""
    return FlagShape(flag, baseline, candidate, share, enabled=not (kill_switch and share <= 0),
                     drop_targeting=drop_targeting)


def candidate_share(definition: Mapping[str, Any], baseline: str, candidate: str) -> float:
    """The percent of users a flag definition gives the candidate; raises ValueError if unclear."""
    if definition.get("state", "ENABLED") == "DISABLED":
        return 0.0
    variants = definition.get("variants")
    if not isinstance(variants, Mapping) or {baseline, candidate} - set(variants):
        raise ValueError(f"variants must include {baseline!r} and {candidate!r}")
    default = definition.get("defaultVariant")
    targeting = definition.get("targeting") or {}
    if not targeting:
        return 100.0 if default == candidate else 0.0
    split = targeting.get("fractional") if isinstance(targeting, Mapping) else None
    if not isinstance(split, list):
        raise ValueError("targeting is not a fractional split (edited by hand?)")
    weights: dict[str, float] = {}
    for item in split:
        if isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) \
                and isinstance(item[1], int | float) and not isinstance(item[1], bool):
            weights[item[0]] = weights.get(item[0], 0.0) + float(item[1])
    total = sum(weights.values())
    if total <= 0:
        raise ValueError("fractional split has no positive weight")
    return 100.0 * weights.get(candidate, 0.0) / total


def read_document(path: Path) -> dict[str, Any]:
    """The whole flag file (other flags in it are kept); a missing file is an empty one."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"$schema": SCHEMA, "flags": {}}
    except OSError as exc:
        raise FlagFileError(f"flag file {path}: cannot read: {exc.strerror or exc}") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FlagFileError(f"flag file {path}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    if not isinstance(document, dict) or not isinstance(document.get("flags", {}), dict):
        raise FlagFileError(f"flag file {path}: not a flagd flag definition (no 'flags' object)")
    document.setdefault("flags", {})
    return document


def write_atomically(path: Path, document: Mapping[str, Any]) -> None:
    """Write to a temp file beside `path`, flush it to disk, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def flag_file(spec: ReleaseSpec) -> Path:
    """`[router] kind = "flagd", file = "flags.json"`: relative paths start at the spec's folder."""
    path = Path(str(spec.router.options.get("file", "")))
    if not path.is_absolute() and spec.path and Path(spec.path).exists():
        path = Path(spec.path).parent / path
    return path


class FlagdLever:
    """TrafficRouter (kind "flagd") over one flag of a flagd flag-definition file."""

    kind = "flagd"

    def __init__(self, path: str | Path, flag: str, baseline: str, candidate: str, *,
                 kill_switch: bool = False, drop_targeting: bool = False):
        self.path = Path(path)
        self.flag = flag
        self.baseline = baseline
        self.candidate = candidate
        self.kill_switch = kill_switch
        self.drop_targeting = drop_targeting
        self._lock = asyncio.Lock()

    @classmethod
    def from_spec(cls, spec: ReleaseSpec) -> FlagdLever:
        strategy = spec.strategy
        return cls(flag_file(spec), strategy.flag, spec.release.baseline, spec.release.candidate,
                   kill_switch=strategy.kill_switch, drop_targeting=strategy.drop_targeting)

    async def ensure(self) -> None:
        """Write the flag at share 0 if the file does not hold it yet (services need it to start)."""
        async with self._lock:
            document = await asyncio.to_thread(read_document, self.path)
            if self.flag not in document["flags"]:
                await asyncio.to_thread(self._write, 0)

    def wanted(self, share: int) -> FlagShape:
        return shape(self.flag, self.baseline, self.candidate, share, kill_switch=self.kill_switch,
                     drop_targeting=self.drop_targeting)

    async def set_weights(self, weights: Mapping[str, int]) -> None:
        """Give the candidate variant `weights[candidate]` percent of users (rewrites the flag)."""
        share = weights.get(self.candidate)
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 100:
            raise FlagFileError(f"share of {self.candidate} must be 0..100, got {share!r}")
        async with self._lock:
            await asyncio.to_thread(self._write, round(share))

    def _write(self, share: int) -> None:
        document = read_document(self.path)
        document["flags"][self.flag] = self.wanted(share).definition()
        document.setdefault("$schema", SCHEMA)
        try:
            write_atomically(self.path, document)
        except OSError as exc:
            raise FlagFileError(f"flag file {self.path}: cannot write: {exc.strerror or exc}") from exc

    async def weights(self) -> Mapping[str, float]:
        """The shares the file gives now, read back (no file or no flag yet: all baseline)."""
        document = await asyncio.to_thread(read_document, self.path)
        definition = document["flags"].get(self.flag)
        if definition is None:
            share = 0.0
        else:
            try:
                share = candidate_share(definition, self.baseline, self.candidate)
            except ValueError as exc:
                raise FlagFileError(f"flag file {self.path}: flag {self.flag!r}: {exc}") from exc
        return {self.baseline: 100.0 - share, self.candidate: share}

    async def enabled(self) -> bool:
        """Whether the flag is switched on (False after the kill switch, or before any write)."""
        document = await asyncio.to_thread(read_document, self.path)
        definition = document["flags"].get(self.flag)
        return isinstance(definition, Mapping) and definition.get("state", "ENABLED") != "DISABLED"

    async def close(self) -> None:
        """Nothing to release: the file stays, as the flag's last state."""
