"""`releasedeck check` on `[router] kind = "nginx"`: dark steps yes, cohorts and sticky users no
(releasedeck's nginx mirrors and splits by weight only), each refusal one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors.nginx import mirror_differences, nginx_config
from strategies.spec import SpecError, load_spec, parse_spec

NGINX = {"kind": "nginx", "port": 8090}


def _spec(router: dict, strategy: dict) -> None:
    parse_spec({"release": {"service": "checkout", "baseline": "v1", "candidate": "v2"},
                "platform": {"kind": "docker", "selector": "app=checkout"},
                "router": router, "strategy": strategy}, "t.toml")


def test_check_accepts_dark_steps_on_nginx() -> None:
    _spec(NGINX, {"kind": "canary", "steps": [{"dark": 20, "hold": "30s"}, 10, 100]})
    spec = load_spec(Path(__file__).resolve().parents[2] / "examples" / "docker" / "dark.toml")
    assert spec.router.kind == "nginx" and spec.strategy.steps[0].mirror == 50


@pytest.mark.parametrize(("strategy", "key", "what"), [
    ({"kind": "ring", "rings": [{"name": "staff", "match": {"header": "G", "values": ["staff"]}},
                                {"name": "all", "weight": 100}]}, "rings[0].match", "a ring's cohort"),
    ({"kind": "ab", "split": 50, "sticky": {"cookie": "uid"}}, "sticky", "sticky users")])
def test_check_refuses_cohorts_and_sticky_on_nginx_in_one_line(strategy: dict, key: str, what: str) -> None:
    with pytest.raises(SpecError) as caught:
        _spec(NGINX, strategy)
    assert len(caught.value.lines()) == 1
    assert caught.value.lines()[0].startswith(f"t.toml: strategy.{key}: {what} needs [router] kind = ")
    assert caught.value.lines()[0].endswith("router 'nginx' cannot do it")


def test_check_refuses_a_bad_nginx_port_in_one_line() -> None:
    with pytest.raises(SpecError) as caught:
        _spec({"kind": "nginx", "port": "eighty"}, {"kind": "canary", "steps": [{"dark": 20}, 100]})
    assert len(caught.value.lines()) == 1 and "router.port" in caught.value.lines()[0]


mirrors = st.one_of(st.none(), st.tuples(st.sampled_from(["v1", "v2", "v2.1-rc"]),
                                         st.sampled_from([1.0, 10.0, 12.5, 50.0, 99.99, 100.0])))


@given(mirrors, mirrors)
def test_the_configs_mirror_reads_back_and_differs_only_from_another_mirror(
        written: tuple[str, float] | None, wanted: tuple[str, float] | None) -> None:
    """Reconcile's read-back of nginx (the config releasedeck wrote into its prefix)."""
    text = nginx_config(8090, {"v1": ["127.0.0.1:1"], "v2": ["127.0.0.1:2"]}, {"v1": 100}, written)
    lines = mirror_differences(text, wanted)
    assert (lines == ()) == (written == wanted)
    assert len(lines) <= 1 and all(line.startswith("nginx: the config mirrors") for line in lines)
    assert mirror_differences(None, wanted) == ("nginx: no config written (not started)",)
