"""A flag release in the brain: spec rules for flag levers, a plan that scales nothing, and the
engine walking the share up, back to 0 on a breach, and to 100 on promotion."""

from __future__ import annotations

import tomllib

import pytest

from strategies.engine import Engine
from strategies.plans import build_plan
from strategies.spec import SpecError, parse_spec
from tests.strategies.brain_kit import ERROR_GATE, T0, World, run_until
from tests.strategies.test_plan_kinds import levers

HEAD = """
[release]
service = "checkout"
baseline = "off"
candidate = "on"

[platform]
kind = "local"

[metrics]
interval = "1s"
window = "10s"
stale_after = "5s"
""" + ERROR_GATE

FLAGD = """
[router]
kind = "flagd"
file = "flags.json"

[strategy]
kind = "flag"
flag = "new-checkout"
workload = "v2"
start_weight = 10
step_weight = 30
max_weight = 70
hold = "5s"
scale_down_delay = "1s"
kill_switch = true
"""


def spec_of(text: str):
    return parse_spec(tomllib.loads(HEAD + text), "flag.toml")


def problems_of(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        spec_of(text)
    return caught.value.lines()


def test_a_flagd_release_reads_into_typed_fields() -> None:
    spec = spec_of(FLAGD)
    assert spec.router.kind == "flagd" and spec.router.options["file"] == "flags.json"
    assert spec.strategy.workload == "v2" and spec.strategy.kill_switch is True
    assert spec.strategy.drop_targeting is False
    assert spec.metrics.version_label == "variant"  # the flag lever's default
    assert spec.versions == ("off", "on") and spec.workloads == ("v2",)


def test_the_plan_ramps_the_share_and_scales_nothing() -> None:
    plan = build_plan(spec_of(FLAGD))
    assert [s.weight for s in plan.steps] == [10, 40, 70, 100]
    assert all(not s.replicas for s in plan.steps)
    assert not plan.full and not plan.rollback


def test_engine_ramps_the_flag_then_promotes_without_scaling() -> None:
    spec = spec_of(FLAGD)
    engine, world = Engine(spec), World.for_spec(spec)
    world.replicas = {}  # the platform runs v2 only; the variants have no instances of their own
    _, seen = run_until(engine, world, T0)
    assert [v for k, _, v in levers(seen)] == [10, 40, 70, 100, 100]
    assert all(k == "set_weight" for k, _, _ in levers(seen))


def test_engine_sets_share_0_when_a_gate_breaks() -> None:
    spec = spec_of(FLAGD)
    engine, world = Engine(spec), World.for_spec(spec)
    world.replicas = {}
    _, seen = run_until(engine, world, T0, until=("rolled_back",), error_ratio=0.5)
    assert levers(seen)[-1] == ("set_weight", "", 0)
    assert world.weight == 0


@pytest.mark.parametrize(("text", "where", "what"), [
    (FLAGD.replace('workload = "v2"\n', ""), "strategy.workload", "is required with router kind 'flagd'"),
    (FLAGD.replace('workload = "v2"', 'workload = "on"'), "strategy.workload", "must differ from the variants"),
    (FLAGD.replace('kind = "flag"', 'kind = "canary"\nsteps = [10]'), "router.kind",
     "'flagd' moves a feature flag: use it with strategy kind 'flag'"),
    (FLAGD.replace('file = "flags.json"\n', ""), "router.file", "is required for router kind 'flagd'"),
    (FLAGD.replace('file = "flags.json"', 'file = "f.json"\nurl = "x"'), "router.url",
     "unknown key for router kind 'flagd'"),
    (FLAGD.replace('kind = "flagd"\nfile = "flags.json"', 'kind = "unleash"'), "router.url",
     "is required for router kind 'unleash'"),
    (FLAGD.replace('kind = "flagd"\nfile = "flags.json"', 'kind = "unleash"\nurl = "http://127.0.0.1:4242"\n'
                   'timeout = -1'), "router.timeout", "must be a number of seconds above 0"),
    (FLAGD.replace('[router]\nkind = "flagd"\nfile = "flags.json"\n', ""), "strategy.workload",
     "needs a flag lever"),
])
def test_flag_lever_mistakes_are_one_line_each(text: str, where: str, what: str) -> None:
    lines = problems_of(text)
    assert any(f"flag.toml: {where}: " in line and what in line for line in lines), lines


def test_an_unleash_release_reads_into_typed_fields() -> None:
    spec = spec_of(FLAGD.replace('kind = "flagd"\nfile = "flags.json"',
                                 'kind = "unleash"\nurl = "http://127.0.0.1:4242"\nenvironment = "production"\n'
                                 'token_env = "MY_TOKEN"'))
    assert spec.router.kind == "unleash"
    assert dict(spec.router.options) == {"url": "http://127.0.0.1:4242", "environment": "production",
                                         "token_env": "MY_TOKEN"}


def test_unleash_lever_without_its_token_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from tui.wiring import AdapterUnavailable, build_adapters

    monkeypatch.delenv("MY_TOKEN", raising=False)
    spec = spec_of(FLAGD.replace('kind = "flagd"\nfile = "flags.json"',
                                 'kind = "unleash"\nurl = "http://127.0.0.1:4242"\ntoken_env = "MY_TOKEN"'))
    with pytest.raises(AdapterUnavailable) as caught:
        build_adapters(spec)
    assert "environment variable MY_TOKEN is not set" in str(caught.value)
