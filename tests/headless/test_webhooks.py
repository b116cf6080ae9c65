"""Webhook gates (Flagger style) against real local receivers, through the real engine."""

from __future__ import annotations

import asyncio
import threading

from collectors.webhooks import WebhookChecks
from strategies.engine import CheckResult, Engine
from strategies.model import Command, CommandKind, Phase, Snapshot
from tests.headless.support import Platform, Source, make_spec, names, run
from tui import exitcodes


def hook(kind: str, url: str, **extra: object) -> dict[str, object]:
    return {"name": f"{kind}-check", "type": kind, "url": url, "timeout": "2s", **extra}


def test_all_hooks_ok_promotes_and_each_phase_is_called(tmp_path, receiver):
    spec = make_spec(webhook=[hook("pre-rollout", receiver.url, metadata={"team": "payments"}),
                              hook("rollout", receiver.url),
                              hook("confirm-promotion", receiver.url)])
    code, events, err, _ = run(spec, Platform(), Source(), tmp_path)
    assert code == exitcodes.PROMOTED, err
    bodies = receiver.bodies()
    phases = [b["phase"] for b in bodies]
    assert phases[0] == "pre-rollout" and phases.count("pre-rollout") == 1
    assert "rollout" in phases
    confirm = [b for b in bodies if b["phase"] == "confirm-promotion"]
    assert confirm and all(b["step"] == 2 for b in confirm)  # only on the last step
    first = bodies[0]
    assert {k: first[k] for k in ("name", "service", "baseline", "candidate", "step",
                                  "metadata")} == {
        "name": "pre-rollout-check", "service": "checkout", "baseline": "v1",
        "candidate": "v2", "step": 0, "metadata": {"team": "payments"}}
    assert [e["ok"] for e in events if e["event"] == "webhook"] == [True, True, True]


def test_failing_pre_rollout_hook_never_starts(tmp_path, receiver):
    receiver.status = 500
    platform = Platform()
    spec = make_spec(webhook=[hook("pre-rollout", receiver.url)])
    code, events, err, wired = run(spec, platform, Source(), tmp_path, timeout=0.3,
                                   ticking=True)
    assert code == exitcodes.ROLLED_BACK and "timed out before promotion" in err
    assert "not started" in err and "started" not in names(events) and platform.calls == []
    assert wired.driver.state.rollout.phase is Phase.PENDING
    [event] = [e for e in events if e["event"] == "webhook"]  # one event per change, not per call
    assert (event["ok"], event["detail"]) == (False, "HTTP 500")
    assert len(receiver.requests) >= 2 and wired.webhooks.failed == len(receiver.requests)


def test_unreachable_confirm_promotion_holds_the_last_step(tmp_path, dead_url):
    spec = make_spec(webhook=[hook("confirm-promotion", dead_url)])
    code, events, _err, wired = run(spec, Platform(), Source(), tmp_path, timeout=0.5,
                                    ticking=True)
    assert code == exitcodes.ROLLED_BACK
    seen = names(events)
    assert "promoting" not in seen and seen.count("step") == 2  # reached the last step, held
    assert wired.driver.state.rollout.step == 2
    assert any("webhook confirm-promotion-check: unreachable" in h
               for h in wired.driver.state.holding)


def test_slow_rollout_hook_times_out_and_holds_the_step(tmp_path, receiver):
    receiver.slow = threading.Event()
    # the hook's timeout is spent inside the tick, so keep it well under stale_after
    spec = make_spec(webhook=[hook("rollout", receiver.url, timeout="100ms")],
                     metrics={"stale_after": "2s"})
    code, events, _, wired = run(spec, Platform(), Source(), tmp_path, timeout=0.6,
                                  ticking=True)
    receiver.slow.set()
    assert code == exitcodes.ROLLED_BACK
    assert wired.driver.state.rollout.step == 0 and "step" not in names(events)
    [event] = [e for e in events if e["event"] == "webhook"]
    assert event["ok"] is False and event["detail"].startswith("timed out")


def test_engine_holds_on_check_results_directly():
    """The engine contract the hooks rely on, without any network."""
    spec = make_spec(strategy={"steps": [50, 100], "hold": "0s"})
    engine = Engine(spec)

    def moves(now: float, check: CheckResult) -> list[str]:
        return [d.kind for d in engine.tick(Snapshot(at=now), now, [check])
                if d.kind not in ("gate", "stale")]

    assert moves(0, CheckResult("pre", "pre-rollout", False, "HTTP 500")) == []
    assert engine.state.phase is Phase.PENDING
    assert moves(1, CheckResult("pre", "pre-rollout", None)) == []
    assert moves(2, CheckResult("pre", "pre-rollout", True)) == ["started"]
    reasons = engine.holding_reasons(None, 3, [CheckResult("r", "rollout", False, "HTTP 502")])
    assert "webhook r: HTTP 502" in reasons
    # confirm-promotion only matters on the last step
    assert not any("webhook" in r for r in engine.holding_reasons(
        None, 3, [CheckResult("c", "confirm-promotion", False, "HTTP 500")]))


def test_due_follows_the_phase():
    spec = make_spec(webhook=[hook("pre-rollout", "http://127.0.0.1:9/"),
                              hook("rollout", "http://127.0.0.1:9/"),
                              hook("confirm-promotion", "http://127.0.0.1:9/")],
                     strategy={"steps": [50, 100], "hold": "0s"})
    engine = Engine(spec)
    checks = WebhookChecks(spec, engine)
    assert [h.type for h in checks.due()] == ["pre-rollout"]
    engine.command(Command(CommandKind.PROMOTE), 0)
    assert [h.type for h in checks.due()] == ["rollout"]
    asyncio.run(checks.close())
