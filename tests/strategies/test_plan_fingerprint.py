"""The journal remembers the plan it walks: a changed spec stops a resume with one line naming
what changed, `--adopt-spec` maps the current step onto the new plan, and journals from before
fingerprints still resume."""

from __future__ import annotations

import pytest

from strategies.engine import Engine, PlanChanged
from strategies.fingerprint import adopt_step, describe_change, journaled_print, plan_print
from strategies.journal import MemoryJournal
from strategies.model import Phase
from strategies.plans import build_plan
from tests.strategies.brain_kit import ERROR_GATE, STRATEGIES, T0, World, kinds, make_spec, run_until

CANARY4 = 'kind = "canary"\nsteps = [10, 25, 50, 100]\nhold = "10s"\nscale_down_delay = "5s"'
SHORT = 'kind = "canary"\nsteps = [20, 100]\nhold = "10s"\nscale_down_delay = "5s"'


def _at_step(strategy: str, steps: int) -> tuple[MemoryJournal, World, float]:
    spec = make_spec(CANARY4 if strategy == "4" else strategy)
    journal = MemoryJournal()
    engine, world = Engine(spec, journal=journal, run="r1"), World.for_spec(spec)
    now = T0
    for _ in range(steps):
        now, _ = run_until(engine, world, now + 1, until=("step", "started"))
    return journal, world, now


def test_the_started_record_carries_the_plan_print():
    journal, _, _ = _at_step("4", 1)
    started = next(r for r in journal.records if r["kind"] == "started")
    walked = journaled_print(journal.records)
    assert walked is not None and started["evidence"][0]["plan"] == walked.digest
    assert walked.steps == ("10%", "25%", "50%", "100%")


def test_a_changed_plan_stops_the_resume_with_one_line_naming_the_change():
    journal, _, _ = _at_step("4", 3)  # at 50 %
    with pytest.raises(PlanChanged) as caught:
        Engine(make_spec(SHORT), records=journal.records)
    text = str(caught.value)
    assert "\n" not in text
    assert "steps 10% 25% 50% 100% → 20% 100%" in text
    assert "--fresh" in text and "--adopt-spec to continue at step 1/2 (20%)" in text


def test_a_changed_gate_is_named():
    journal, _, _ = _at_step("4", 2)
    stricter = ERROR_GATE.replace("max = 0.05", "max = 0.01")
    with pytest.raises(PlanChanged, match="gate errors changed"):
        Engine(make_spec(CANARY4, gates=stricter), records=journal.records)


def test_the_same_plan_resumes_and_an_old_journal_without_a_print_resumes():
    journal, _, _ = _at_step("4", 2)
    assert Engine(make_spec(CANARY4), records=journal.records).state.step == 1
    old = [{**r, "evidence": [e for e in r["evidence"] if "plan" not in e]}
           for r in journal.records]
    resumed = Engine(make_spec(SHORT), records=old)  # nothing to compare with: as before
    assert resumed.state.step == 1 and resumed.state.phase is Phase.PROGRESSING


def test_adopt_spec_maps_the_step_by_weight_and_restarts_its_hold():
    journal, world, now = _at_step("4", 3)  # at 50 %
    spec = make_spec(SHORT)
    engine = Engine(spec, journal=journal, records=journal.records, adopt_spec=True)
    first = engine.tick(world.healthy(now + 1), now + 1)
    adopted = [d for d in first if d.kind == "adopted"]
    assert len(adopted) == 1 and adopted[0].step == 0 and adopted[0].weight == 20
    assert adopted[0].evidence[0]["plan"] == plan_print(engine.plan, spec.gates).digest
    assert "steps 10% 25% 50% 100% → 20% 100%" in adopted[0].evidence[0]["change"]
    assert [(a.kind, a.value) for a in adopted[0].actions][-1] == ("set_weight", 20)
    world.settle(engine, now + 1)
    later, seen = run_until(engine, world, now + 2, until=("promoting",))
    assert later - (now + 1) >= 10  # the new step's whole hold, from the adoption
    # and the journal now walks the new plan: a plain resume is accepted
    assert Engine(spec, records=journal.records).plan_print.digest == \
        journaled_print(journal.records).digest
    assert "adopted" not in kinds(seen)


def test_describe_change_and_adopt_step_on_worked_examples():
    four = build_plan(make_spec(CANARY4))
    short = build_plan(make_spec(SHORT))
    old, new = plan_print(four, ()), plan_print(short, ())
    assert describe_change(old, old) == ""
    assert describe_change(old, new) == "steps 10% 25% 50% 100% → 20% 100%"
    assert [adopt_step(short, w) for w in (0, 10, 20, 50, 100)] == [0, 0, 0, 0, 1]
    assert [adopt_step(four, w) for w in (5, 25, 49, 100)] == [0, 1, 1, 3]
    bg = build_plan(make_spec(STRATEGIES["blue-green"]))
    assert describe_change(plan_print(bg, ()), old).startswith("strategy blue-green → canary")
