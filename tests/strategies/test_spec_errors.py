"""Spec errors are what users see first: every problem at once, each with file, field and reason."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from strategies.duration import format_duration, parse_duration
from strategies.model import Severity
from strategies.spec import SpecError, load_spec, parse_spec
from strategies.wording import show

GOOD = """
[release]
service = "checkout"
baseline = "v1"
candidate = "v2"

[strategy]
kind = "canary"
steps = [10, 50]

[[gate]]
metric = "error_rate"
max = 0.01
"""


def problems(text: str, path: str = "release.toml") -> dict[str, str]:
    """Field path -> reason, for every problem of the spec (it must be invalid)."""
    with pytest.raises(SpecError) as caught:
        parse_spec(tomllib.loads(text), path)
    err = caught.value
    assert all(line.startswith(f"{path}: ") for line in err.lines())
    assert str(err) == "\n".join(err.lines())
    found: dict[str, str] = {}
    for where, what in err.problems:
        found.setdefault(where, what)
    return found


def with_(extra: str, base: str = GOOD) -> str:
    return base + "\n" + extra


def test_good_spec_loads(tmp_path: Path) -> None:
    path = tmp_path / "release.toml"
    path.write_text(GOOD)
    spec = load_spec(path)
    assert spec.release.candidate == "v2" and spec.gates[0].name == "error_rate"
    assert spec.gates[0].severity is Severity.CRITICAL and spec.path == str(path)
    assert spec.journal_path() == tmp_path / ".release.releasedeck.journal"


def test_all_problems_are_reported_together() -> None:
    text = """
[release]
service = "checkout"
baseline = "v1"
candidat = "v2"

[platform]
kind = "dokcer"
replicas = "three"

[metrics]
source = "prometheus"
interval = "1 s"
windw = "30s"

[strategy]
kind = "canary"
steps = [10, 5, "later", 200]
hold = -3

[[gate]]
metric = "error_rat"
max = "0.05"
severity = "fatal"

[[gate]]
name = "p99"
metric = "latency_p99"

[[gate]]
metric = "latency_p99"
max = 0.5
max_ratio = 0
for = "ten"
min_requests = true

[[alert]]
kind = "webhok"

[gates]
x = 1
"""
    found = problems(text)
    expected = {
        "gates": "unknown section (did you mean 'gate'?)",
        "release.candidate": "is required",
        "release.candidat": "unknown key (did you mean 'candidate'?)",
        "platform.kind": "must be one of local, docker, kubernetes, got \"dokcer\" (did you mean 'docker'?)",
        "platform.replicas": 'must be an integer, got "three"',
        "metrics.url": "is required when source is 'prometheus'",
        "metrics.interval": "expected a duration like '30s', '2m' or '1h30m', got '1 s'",
        "metrics.windw": "unknown key (did you mean 'window'?)",
        "strategy.hold": "duration must not be negative, got -3",
        "strategy.steps[1]": "weights must not go down (5 after 10)",
        "strategy.steps[2]": "must be a weight, 'pause' or a table, got \"later\"",
        "strategy.steps[3]": "weight must be between 0 and 100, got 200",
        "gate[0].metric": "unknown metric 'error_rat' (did you mean 'error_rate'?); a custom metric needs a 'query'",
        "gate[0].max": 'must be a number, got "0.05"',
        "gate[0].severity": "must be one of critical, warning, info, got \"fatal\" (did you mean ...)",
        "gate[1]": "needs at least one of max, min, max_ratio or compare",
        "gate[2].max_ratio": "must be greater than 0, got 0",
        "gate[2].for": "expected a duration like '30s', '2m' or '1h30m', got 'ten'",
        "gate[2].min_requests": "must be a number, got true",
        "alert[0].kind": "must be one of stdout, webhook, slack, alertmanager, got \"webhok\" "
                         "(did you mean 'webhook'?)",
    }
    assert set(expected) <= set(found), sorted(set(expected) - set(found))
    for where, reason in expected.items():
        if "..." in reason:
            assert found[where].startswith(reason.split(" (did")[0]), where
        else:
            assert found[where] == reason, where
    # A gate whose bound has a bad type is told about the type, not that it has no bound.
    assert "gate[0]" not in found


@pytest.mark.parametrize(("extra", "where", "hint"), [
    ('[release]\nservise = "x"', "release.servise", "'service'"),
    ('[metrics]\nstale_afer = "5s"', "metrics.stale_afer", "'stale_after'"),
    ('[router]\nkind = "haproxy"\nsockt = "/run/h.sock"', "router.sockt", "'socket'"),
    ('[platform]\nkind = "kubernetes"\nnamespce = "prod"', "platform.namespce", "'namespace'"),
    ('[[alert]]\nkind = "stdout"\nmin_severty = "info"', "alert[0].min_severty", "'min_severity'"),
    ('[[webhook]]\ntype = "rollout"\nurl = "http://127.0.0.1:1"\ntimout = "1s"', "webhook[0].timout", "'timeout'"),
    ('[metrics.queries]\nerror = "x"', "metrics.queries.error", "'errors'"),
    ('[metric]\nsource = "scrape"', "metric", "'metrics'"),
])
def test_unknown_keys_get_a_did_you_mean(extra: str, where: str, hint: str) -> None:
    base = GOOD if not extra.startswith("[release]") else GOOD.replace('service = "checkout"\n', "")
    if extra.startswith("[release]"):
        text = base.replace('[release]\n', '[release]\nservice = "checkout"\nservise = "x"\n')
    else:
        text = with_(extra)
    found = problems(text)
    assert where in found, found
    assert f"did you mean {hint}?" in found[where]


def test_unknown_key_in_gate_and_step_table() -> None:
    found = problems(GOOD.replace("max = 0.01", "max = 0.01\nmax_ration = 2")
                     .replace("steps = [10, 50]", 'steps = [10, {weight = 50, hodl = "1m"}]'))
    assert found["gate[0].max_ration"] == "unknown key (did you mean 'max_ratio'?)"
    assert found["strategy.steps[1].hodl"] == "unknown key (did you mean 'hold'?)"


def test_argo_and_flagger_words_say_what_to_write_here() -> None:
    """A Flagger user writes `threshold`, an Argo user `setWeight` and `analysis`: a spelling
    hint sent them to the wrong key ("analysis" → "preview_analysis"), or to none."""
    found = problems(GOOD.replace("max = 0.01", "threshold = 0.01")
                     .replace("steps = [10, 50]", "steps = [10, {setWeight = 50}]")
                     + "\n[analysis]\ninterval = \"1m\"\n")
    assert "max (absolute) or max_ratio" in found["gate[0].threshold"]
    assert "{ weight = 20, hold" in found["strategy.steps[1].setWeight"]
    assert "[[gate]] tables" in found["analysis"] and "preview_analysis" not in found["analysis"]


def test_a_byte_order_mark_is_not_a_toml_error(tmp_path: Path) -> None:
    """Notepad starts a UTF-8 file with a byte-order mark: it read "line 1, column 1: not valid
    TOML (Invalid statement)", about a character nobody can see."""
    path = tmp_path / "release.toml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert load_spec(path).release.service == "checkout"


@pytest.mark.parametrize("value", ['"1 s"', '"ten"', '"30"', '""', "-5", "true", '"5x"', '"1h30"', "[1]"])
def test_bad_durations(value: str) -> None:
    found = problems(GOOD.replace('kind = "canary"', f'kind = "canary"\nhold = {value}'))
    assert "strategy.hold" in found
    assert "duration" in found["strategy.hold"]


@pytest.mark.parametrize(("text", "seconds"), [
    ("500ms", 0.5), ("30s", 30), ("2m", 120), ("1h30m", 5400), ("1d", 86400), ("1.5s", 1.5), (7, 7), (0.25, 0.25),
    (" 10s ", 10),
])
def test_good_durations(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_format_duration() -> None:
    assert [format_duration(x) for x in (0, 0.25, 12, 65, 3720)] == ["0s", "250ms", "12s", "1m05s", "1h02m"]


@pytest.mark.parametrize(("extra", "where", "reason"), [
    ('[platform]\nreplicas = 1.5', "platform.replicas", "must be an integer, got 1.5"),
    ('[platform]\nreplicas = true', "platform.replicas", "must be an integer, got true"),
    ('[release.x]\n', "release.x", "unknown key"),
    ('[metrics]\nurl = 9090', "metrics.url", "must be a string, got 9090"),
    ('[metrics]\nqueries = "x"', "metrics.queries", "must be a table, got \"x\""),
    ('[[alert]]\nkind = "stdout"\nretries = "3"', "alert[0].retries", 'must be an integer, got "3"'),
    ('[platform]\nkind = "local"\ncommand = "python app.py"', "platform.command",
     'has the wrong type: "python app.py"'),
])
def test_bad_types(extra: str, where: str, reason: str) -> None:
    found = problems(with_(extra))
    assert found[where].startswith(reason), found[where]


def test_wrong_shapes_of_whole_sections() -> None:
    found = problems('alert = ["x"]\n' + GOOD.replace("[[gate]]", "[gate]"))
    assert found["gate"] == "must be an array of tables ([[gate]])"
    assert found["alert[0]"] == 'must be a table ([[alert]]), got "x"'
    found = problems('gate = [1]\n' + GOOD.replace("[[gate]]\nmetric = \"error_rate\"\nmax = 0.01\n", ""))
    assert found["gate[0]"].startswith("must be a table like")
    found = problems('strategy = "canary"\n[release]\nservice = "a"\nbaseline = "1"\ncandidate = "2"')
    assert found["strategy"] == "must be a table"


def test_missing_required() -> None:
    found = problems('[strategy]\nkind = "canary"\nsteps = [10]')
    assert found == {"release": "section is required (service, baseline and candidate)"}
    found = problems('[release]\nservice = ""\nbaseline = "v1"\n\n[strategy]\nsteps = [1]')
    assert found["release.service"] == "must not be empty"
    assert found["release.candidate"] == "is required"
    found = problems(with_('[[gate]]\nmax = 1'))
    assert found["gate[1].metric"] == "is required"
    found = problems(with_('[[alert]]\nkind = "slack"\n[[webhook]]\nname = "w"'))
    assert found["alert[0].url"] == "is required for a slack alert"
    assert found["webhook[0].type"] == "is required" and found["webhook[0].url"] == "is required"


@pytest.mark.parametrize(("strategy", "where", "reason"), [
    ('kind = "canary"', "strategy.steps", "a canary plan needs at least one step"),
    ('kind = "ring"', "strategy.rings", "a ring plan needs at least one step"),
    ('kind = "rolling"\nmax_surge = 0', "strategy.max_surge", "max_surge and max_unavailable cannot both be 0"),
    ('kind = "flag"', "strategy.flag", "is required for a flag plan (the feature flag's name)"),
    ('kind = "flag"\nflag = "f"\nstart_weight = 60\nmax_weight = 50', "strategy.start_weight",
     "is above max_weight (60 > 50)"),
    ('kind = "ab"\nsplit = 100', "strategy.split", "must be at most 99, got 100"),
    ('kind = "ring"\nrings = [{name = "a", weight = 50}, {name = "b", weight = 10}]', "strategy.rings[1].weight",
     "must not go down from the ring before (10 after 50)"),
    ('kind = "ring"\nrings = [{name = "a"}]', "strategy.rings[0].weight", "is required"),
    ('kind = "ring"\nrings = [{weight = 5}]', "strategy.rings[0].name", "is required"),
    ('kind = "ring"\nrings = "all"', "strategy.rings", "must be a list of tables"),
    ('kind = "canary"\nsteps = [{hold = "1m"}]', "strategy.steps[0].weight", "is required"),
    ('kind = "canary"\nsteps = [true]', "strategy.steps[0]", "must be a weight, 'pause' or a table, got true"),
    ('kind = "canary"\nsteps = "10,50"', "strategy.steps", 'must be a list, got "10,50"'),
    ('kind = "blue-grene"', "strategy.kind", "must be one of canary, blue-green"),
])
def test_strategy_problems(strategy: str, where: str, reason: str) -> None:
    head = GOOD.split("[strategy]")[0]
    found = problems(head + "[strategy]\n" + strategy + "\n")
    assert where in found, found
    assert found[where].startswith(reason), found[where]


@pytest.mark.parametrize(("gate", "where", "reason"), [
    ("min = 5.0\nmax = 1.0", "gate[0].min", "is above max (5 > 1)"),
    ("max = 1\nconfidence = 0.2", "gate[0].confidence", "must be at least 0.5, got 0.2"),
    ("max = 1\nmin_requests = -1", "gate[0].min_requests", "must be at least 0, got -1"),
    ('compare = "ttest"', "gate[0].compare", 'must be one of none, proportion, mannwhitney, got "ttest"'),
    ('max = 1\nquery = "rate(x{{version=\\"{verison}\\"}}[{window}])"', "gate[0].query",
     "unknown placeholder {verison} (did you mean 'version'?)"),
    ('max = 1\nquery = "rate(x{job=\\"a\\"}[1m])"', "gate[0].query", "unknown placeholder"),
])
def test_gate_problems(gate: str, where: str, reason: str) -> None:
    found = problems(GOOD.replace('metric = "error_rate"\nmax = 0.01', f'metric = "custom_x"\n{gate}'
                                  if "query" in gate else f'metric = "error_rate"\n{gate}'))
    assert found[where].startswith(reason), found[where]


def test_duplicate_gate_names_and_same_versions() -> None:
    found = problems(with_('[[gate]]\nmetric = "error_rate"\nmax = 0.5').replace('candidate = "v2"',
                                                                                 'candidate = "v1"'))
    assert found["gate[1].name"].startswith("duplicate gate name 'error_rate'")
    assert found["release.candidate"] == "must differ from baseline (both are 'v1')"


def test_metrics_consistency() -> None:
    found = problems(with_('[metrics]\ninterval = "10s"\nwindow = "5s"\nstale_after = "2s"\nurl = "127.0.0.1:9090"'))
    assert found["metrics.window"] == "must be at least the interval (10s)"
    assert found["metrics.stale_after"] == "must be at least the interval (10s)"
    assert found["metrics.url"] == "must start with http:// or https://, got '127.0.0.1:9090'"


def test_custom_query_templates_are_accepted_when_well_formed() -> None:
    spec = parse_spec(tomllib.loads(with_(
        '[metrics]\n[metrics.queries]\nrequests = "sum by ({version_label}) (increase(req_total'
        '{{service=\\"{service}\\"}}[{window}]))"')))
    assert "req_total" in spec.metrics.queries["requests"]


def test_torn_toml_names_line_and_quotes_it(tmp_path: Path) -> None:
    path = tmp_path / "torn.toml"
    path.write_text('[release]\nservice = "checkout"\nbaseline = "v1\ncandidate = "v2"\n')
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    (where, what), = caught.value.problems
    assert where == "line 3, column 15"
    assert what.startswith("not valid TOML (") and what.endswith(': baseline = "v1')
    assert str(caught.value).startswith(f"{path}: line 3, column 15: not valid TOML")


def test_cut_off_file_is_a_clean_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.toml"
    path.write_text(GOOD[: GOOD.index("max = 0.01") + 5])  # "max =" and nothing after
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert "not valid TOML" in str(caught.value) and "\n" not in str(caught.value)


def test_unreadable_file_is_a_clean_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(tmp_path / "missing.toml")
    assert str(caught.value) == f"{tmp_path / 'missing.toml'}: cannot read file: No such file or directory"


def test_comparisons_must_fit_the_metric() -> None:
    found = problems(GOOD.replace('max = 0.01', 'max = 0.01\ncompare = "mannwhitney"'))
    assert found["gate[0].compare"].startswith("'mannwhitney' compares latency histograms")
    found = problems(GOOD.replace('metric = "error_rate"\nmax = 0.01',
                                  'metric = "latency_p95"\ncompare = "proportion"'))
    assert found["gate[0].compare"].startswith("'proportion' compares error rates")
    spec = parse_spec(tomllib.loads(GOOD.replace('metric = "error_rate"\nmax = 0.01',
                                                 'metric = "latency_p95"\ncompare = "mannwhitney"')))
    assert spec.gates[0].compare == "mannwhitney"


def test_step_with_weight_and_pause_is_explained() -> None:
    found = problems(GOOD.replace("steps = [10, 50]", 'steps = [10, {weight = 30, pause = "1m"}, {pause = false}]'))
    assert found["strategy.steps[1].weight"] == "a step is a weight or a pause, not both; make them two steps"
    assert found["strategy.steps[2].pause"] == "expected a duration like '30s', got false"


def test_platform_key_of_another_kind_says_which() -> None:
    found = problems(with_('[platform]\nkind = "local"\nnamespace = "prod"'))
    assert found["platform.namespace"] == ("unknown key for platform kind 'local'; "
                                           "it is a key of platform kind 'kubernetes'")


def test_non_finite_numbers_and_odd_keys() -> None:
    found = problems(GOOD.replace("max = 0.01", 'max = nan\nmax_ratio = inf\nfor = inf\n"a\\nb" = 1'))
    assert found["gate[0].max"] == "must be a finite number, got nan"
    assert found["gate[0].max_ratio"] == "must be a finite number, got inf"
    assert found["gate[0].for"] == "expected a duration like '30s', got inf"
    assert found['gate[0]."a\\nb"'] == "unknown key"


def _named(key: str, name: str) -> str:
    """GOOD with one of its names replaced (written as a TOML string, quotes escaped)."""
    return re.sub(rf'^{key} = ".*"$', f"{key} = {json.dumps(name)}", GOOD, count=1, flags=re.M)


@pytest.mark.parametrize("key, name", [("service", "Check Out!"), ("baseline", 'v1"'),
                                       ("candidate", "v2 beta"), ("service", "-lead"),
                                       ("candidate", "x" * 64)])
def test_names_that_would_break_a_query_or_a_label_are_refused(key: str, name: str) -> None:
    assert problems(_named(key, name))[f"release.{key}"].startswith(f"{show(name)} cannot name a release")


@pytest.mark.parametrize("name", ["checkout", "v1.2.3", "2026-11-28_rc1", "A", "x" * 63])
def test_names_a_label_value_may_carry_are_accepted(name: str) -> None:
    assert parse_spec(tomllib.loads(_named("service", name)), "release.toml").release.service == name
