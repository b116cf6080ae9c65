"""The flagd lever against the real OpenFeature SDK + flagd provider (in-process, file mode).

releasedeck writes the flag file; the SDK reads it exactly as a service would. Shares are checked
on thousands of real evaluations against binomial noise, never against timings.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import Reason

from collectors.flags.flagd import FlagdLever, FlagFileError
from strategies.ports import TrafficRouter
from tests.collectors.flags.noise import within_binomial_noise

FLAG = "new-checkout"
USERS = [f"user-{i}" for i in range(4000)]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


class Reader:
    """A service's view of the flag: the real SDK with the flagd provider reading the file."""

    def __init__(self, path: Path, domain: str):
        self.domain = domain
        self.provider = FlagdProvider(resolver_type=ResolverType.FILE,
                                      offline_flag_source_path=str(path), deadline_ms=50)
        api.set_provider_and_wait(self.provider, domain=domain)
        self.client = api.get_client(domain)

    def details(self, user: str):
        return self.client.get_boolean_details(FLAG, False, EvaluationContext(targeting_key=user))

    def on(self) -> set[str]:
        """The users who get the new code path right now."""
        return {u for u in USERS if self.details(u).value is True}

    def await_share(self, share: int) -> None:
        """Until the provider has re-read the file (bounded: 400 polls)."""
        for _ in range(400):
            if self.details("probe").flag_metadata.get("share") == share:
                return
            time.sleep(0.025)
        raise AssertionError(f"provider never saw share {share}")

    def await_disabled(self) -> None:
        for _ in range(400):
            if self.details("probe").reason == Reason.DISABLED:
                return
            time.sleep(0.025)
        raise AssertionError("provider never saw the flag disabled")


@pytest.fixture
def reader_domain(request: pytest.FixtureRequest) -> Iterator[str]:
    yield request.node.name
    api.clear_providers()


def test_sdk_sees_each_share_within_binomial_noise(tmp_path: Path, reader_domain: str) -> None:
    path = tmp_path / "flags.json"
    lever = FlagdLever(path, FLAG, "off", "on")
    assert isinstance(lever, TrafficRouter)
    for share in (5, 25, 50, 90):
        run(lever.set_weights({"off": 100 - share, "on": share}))
        reader = Reader(path, f"{reader_domain}-{share}")  # a fresh service reads the file
        on = reader.on()
        assert within_binomial_noise(len(on), len(USERS), share), (share, len(on))
        assert run(lever.weights()) == {"off": 100.0 - share, "on": float(share)}
        variants = {reader.details(u).variant for u in USERS[:200]}
        assert variants == {"off", "on"}


def test_users_keep_their_variant_while_the_share_grows(tmp_path: Path, reader_domain: str) -> None:
    path = tmp_path / "flags.json"
    lever = FlagdLever(path, FLAG, "off", "on")
    run(lever.set_weights({"off": 90, "on": 10}))
    reader = Reader(path, reader_domain)  # one long-lived service: it re-reads the file on change
    seen = [reader.on()]
    for share in (30, 60, 100):
        run(lever.set_weights({"off": 100 - share, "on": share}))
        reader.await_share(share)
        seen.append(reader.on())
    for before, after in itertools.pairwise(seen):
        assert before <= after  # nobody who had the new path lost it
        assert len(after) > len(before)
    assert len(seen[-1]) == len(USERS)


def test_kill_switch_disables_the_flag_and_a_new_share_enables_it(tmp_path: Path,
                                                                   reader_domain: str) -> None:
    path = tmp_path / "flags.json"
    lever = FlagdLever(path, FLAG, "off", "on", kill_switch=True)
    run(lever.set_weights({"off": 50, "on": 50}))
    reader = Reader(path, reader_domain)
    assert run(lever.enabled()) is True
    run(lever.set_weights({"off": 100, "on": 0}))  # the rollback
    reader.await_disabled()
    assert reader.on() == set()
    assert json.loads(path.read_text())["flags"][FLAG]["state"] == "DISABLED"
    assert run(lever.enabled()) is False
    assert run(lever.weights()) == {"off": 100.0, "on": 0.0}
    run(lever.set_weights({"off": 80, "on": 20}))  # a retry ramps again
    reader.await_share(20)
    assert run(lever.enabled()) is True
    assert within_binomial_noise(len(reader.on()), len(USERS), 20)


def test_without_kill_switch_share_0_keeps_the_flag_enabled(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    lever = FlagdLever(path, FLAG, "off", "on")
    run(lever.set_weights({"off": 100, "on": 0}))
    assert run(lever.enabled()) is True
    assert run(lever.weights())["on"] == 0.0


def test_promote_can_drop_targeting(tmp_path: Path, reader_domain: str) -> None:
    path = tmp_path / "flags.json"
    lever = FlagdLever(path, FLAG, "off", "on", drop_targeting=True)
    run(lever.set_weights({"off": 0, "on": 100}))
    flag = json.loads(path.read_text())["flags"][FLAG]
    assert "targeting" not in flag and flag["defaultVariant"] == "on"
    reader = Reader(path, reader_domain)
    assert reader.on() == set(USERS)
    assert reader.details("x").reason == Reason.STATIC
    assert run(lever.weights()) == {"off": 0.0, "on": 100.0}


def test_other_flags_in_the_file_are_kept_and_no_temp_file_is_left(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    other = {"state": "ENABLED", "variants": {"a": "x", "b": "y"}, "defaultVariant": "a"}
    path.write_text(json.dumps({"flags": {"banner": other}}))
    lever = FlagdLever(path, FLAG, "off", "on")
    for share in (10, 20, 30):
        run(lever.set_weights({"off": 100 - share, "on": share}))
    document = json.loads(path.read_text())
    assert document["flags"]["banner"] == other
    assert document["flags"][FLAG]["targeting"]["fractional"][1:] == [["on", 30], ["off", 70]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flags.json"]


def test_before_any_write_the_share_is_0(tmp_path: Path) -> None:
    lever = FlagdLever(tmp_path / "absent.json", FLAG, "off", "on")
    assert run(lever.weights()) == {"off": 100.0, "on": 0.0}


@pytest.mark.parametrize(("content", "reason"), [
    ("{not json", "not valid JSON (line 1"),
    ('{"flags": []}', "not a flagd flag definition"),
    ('{"flags": {"new-checkout": {"variants": {"off": false, "on": true}, "defaultVariant": "off", '
     '"targeting": {"if": [true, "on", "off"]}}}}', "targeting is not a fractional split"),
    ('{"flags": {"new-checkout": {"variants": {"a": false}, "defaultVariant": "a"}}}',
     "variants must include 'off' and 'on'"),
])
def test_a_file_it_cannot_understand_is_one_clear_line(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "flags.json"
    path.write_text(content)
    lever = FlagdLever(path, FLAG, "off", "on")
    with pytest.raises(FlagFileError) as caught:
        run(lever.weights())
    message = str(caught.value)
    assert reason in message and str(path) in message and "\n" not in message


def test_share_outside_0_to_100_is_refused(tmp_path: Path) -> None:
    lever = FlagdLever(tmp_path / "flags.json", FLAG, "off", "on")
    with pytest.raises(FlagFileError, match=r"must be 0\.\.100"):
        run(lever.set_weights({"off": -10, "on": 110}))
    assert not (tmp_path / "flags.json").exists()
