"""Whatever a user writes, the loader answers with the spec or with SpecError lines, never a crash."""

from __future__ import annotations

import copy
import os
import tomllib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strategies.engine import Engine
from strategies.spec import SpecError, parse_spec

FULL = """
[release]
service = "checkout"
baseline = "v1"
candidate = "v2"
journal = "j.jsonl"

[platform]
kind = "local"
replicas = 2
command = ["python", "app.py"]

[router]
kind = "local"
listen = "127.0.0.1"

[metrics]
source = "prometheus"
url = "http://127.0.0.1:9090"
interval = "1s"
window = "30s"
[metrics.queries]
requests = 'sum by ({version_label}) (increase(http_requests_total{{service="{service}"}}[{window}]))'

[strategy]
kind = "canary"
steps = [10, "pause", {weight = 50, hold = "1m"}, {pause = "30s"}]
rings = [{name = "a", weight = 5}]
hold = "30s"

[[gate]]
name = "errors"
metric = "error_rate"
max = 0.01
max_ratio = 2.0
for = "10s"
compare = "proportion"

[[alert]]
kind = "webhook"
url = "http://127.0.0.1:9093"

[[webhook]]
type = "rollout"
url = "http://127.0.0.1:8080"
metadata = {team = "payments"}

[demo]
rate = 50
"""
BASE = tomllib.loads(FULL)

values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            out += paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += paths(value, (*prefix, i))
    return out


ALL_PATHS = paths(BASE)


def mutate(data: dict, path: tuple, value: Any) -> dict:
    doc = copy.deepcopy(data)
    node = doc
    for key in path[:-1]:
        node = node[key]
    if value is None:  # TOML has no null: None means "delete the key"
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


FUZZ_EXAMPLES = int(os.environ.get("BRAIN_FUZZ", "300"))  # BRAIN_FUZZ=4000 for a deeper hunt


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.lists(st.tuples(st.sampled_from(ALL_PATHS), values), min_size=1, max_size=4))
def test_any_mutation_gives_a_spec_or_clean_problems(changes: list[tuple[tuple, Any]]) -> None:
    doc = BASE
    for path, value in changes:
        try:
            doc = mutate(doc, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed or reshaped the parent
    try:
        spec = parse_spec(doc, "fuzz.toml")
    except SpecError as exc:
        assert exc.problems
        for line in exc.lines():
            assert line.startswith("fuzz.toml: ") and "\n" not in line and "Traceback" not in line
        return
    # A spec that loads always makes a plan the engine can start.
    engine = Engine(spec)
    assert engine.plan.steps and engine.plan.weight_at(len(engine.plan.steps) - 1) == 100
