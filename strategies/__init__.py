"""The brain of releasedeck: pure model, release spec, plans, gates and the rollout engine.

Nothing in this package touches the network or reads a clock: time is always passed in, so the
same inputs always give the same decisions (which is what makes journal resume and replay work).

How the parts fit, in the order data flows:

- `spec.load_spec(path)` reads release.toml into a frozen `ReleaseSpec`, or raises `SpecError`
  listing every problem as "file: field.path: reason".
- `plans.build_plan(spec)` unrolls the strategy (canary, blue-green, rolling, ab, ring, flag)
  into steps: a target weight and replicas, a hold, whether gates must pass, whether to wait.
- `step_evidence.advance` counts what each version served since its step began (exact interval
  counts from `Tally`s); `gates.assess` tests each bound on those counts with the anytime-valid
  e-processes of `evidence` (fail once the evidence reaches 1/(1 - confidence)); throughput,
  `min` and custom gates keep `gates.judge`'s point comparison; `GateTracker` adds the optional
  `for` clock. Missing, thin or stale data is UNKNOWN, and unknown never lets a step advance.
- `engine.Engine` walks the plan: `tick(snapshot, now)` and `command(cmd, now)` return
  `Decision`s, each journaled before it is acted on; the caller carries out
  `engine.state.pending` actions and confirms each with `engine.action_done(action, now)`.
- `journal` writes and reads those decisions as JSON lines; `Engine(spec, records=...)`
  folds them back into the same state, so a restart resumes where the last run stopped.
"""
