"""examples/kubernetes: every spec loads, names match the manifests, and each lever works on them.

The manifests are applied to kmock as they are (a real cluster would add status), then the
example spec's lever is pulled once, so a renamed object or a wrong option fails here.
"""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path

import pytest
import yaml
from k8s_harness import DEPLOYMENTS, HTTPROUTES, NS, ROLLOUTS, SERVICES, kmock_cluster, seed, stored, writes

from collectors.kubernetes import KubernetesPlatform
from strategies.spec import SpecError, load_spec, parse_spec

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "kubernetes"
RESOURCES = {"Deployment": DEPLOYMENTS, "Service": SERVICES, "HTTPRoute": HTTPROUTES, "Rollout": ROLLOUTS}
MANIFESTS = {
    "replicas": ["deployments.yaml", "service.yaml"],
    "service": ["deployments.yaml", "service-bluegreen.yaml"],
    "httproute": ["deployments.yaml", "httproute.yaml"],
    "rolling": ["rolling.yaml"],
    "argo": ["rollout.yaml"],
}


def manifests(*names: str) -> list[dict]:
    docs: list[dict] = []
    for name in names:
        docs += [d for d in yaml.safe_load_all((EXAMPLES / "manifests" / name).read_text()) if d]
    return docs


PATTERNS = {"ring": "ring", "dark": "canary"}
"""Examples of a pattern (not of a lever) on the httproute lever: file stem -> strategy kind."""


def test_every_lever_has_an_example_that_loads() -> None:
    specs = {p.stem: load_spec(p) for p in sorted(EXAMPLES.glob("*.toml")) if p.stem not in PATTERNS}
    assert set(specs) == set(MANIFESTS)
    for lever, spec in specs.items():
        assert spec.platform.kind == "kubernetes"
        assert spec.platform.options["lever"] == lever
        assert spec.platform.options["namespace"] == NS


def test_names_in_specs_exist_in_manifests() -> None:
    for lever, files in MANIFESTS.items():
        spec = load_spec(EXAMPLES / f"{lever}.toml")
        docs = manifests(*files)
        names = {(d["kind"], d["metadata"]["name"]) for d in docs}
        assert all(d["metadata"]["namespace"] == NS for d in docs)
        opts = spec.platform.options
        for name in (opts.get("deployments") or {}).values():
            assert ("Deployment", name) in names
        for kind, key in (("Service", "service"), ("HTTPRoute", "httproute"), ("Deployment", "deployment"),
                          ("Rollout", "rollout")):
            if key in opts:
                assert (kind, opts[key]) in names, (lever, kind, opts[key])
        for name in (opts.get("backends") or {}).values():
            assert ("Service", name) in names
        workloads = [d for d in docs if d["kind"] in ("Deployment", "Rollout")]
        for w in workloads:  # the pods carry both the selector's and the version label
            labels = w["spec"]["template"]["metadata"]["labels"]
            assert labels["app"] == "checkout" and spec.platform.version_label in labels


def _spec_on(kubeconfig: Path, lever: str):
    data = tomllib.loads((EXAMPLES / f"{lever}.toml").read_text())
    data["platform"].update(kubeconfig=str(kubeconfig), context="test")
    return parse_spec(data, f"{lever}.toml")


@pytest.mark.parametrize("lever", sorted(MANIFESTS))
def test_example_lever_moves_on_its_manifests(lever: str, tmp_path: Path) -> None:
    async def scenario() -> dict:
        async with kmock_cluster(tmp_path) as (k, kubeconfig):
            for doc in manifests(*MANIFESTS[lever]):
                seed(k, RESOURCES[doc["kind"]], doc)
            platform = KubernetesPlatform(_spec_on(kubeconfig, lever))
            snap = await platform.snapshot(["v1", "v2"], 1.0)
            assert snap.error is None, snap.error
            await platform.set_weights({"v1": 100, "v2": 0} if lever == "argo" else {"v1": 0, "v2": 100})
            await platform.close()
            return {
                "replicas": lambda: stored(k, DEPLOYMENTS, "checkout-v2")["spec"]["replicas"],
                "service": lambda: stored(k, SERVICES, "checkout")["spec"]["selector"],
                "httproute": lambda: [r["weight"] for r in
                                      stored(k, HTTPROUTES, "checkout")["spec"]["rules"][0]["backendRefs"]],
                # kmock replaces lists where a real server's strategic merge matches containers by
                # name (keeping ports and probes), so only name and image are compared here.
                "rolling": lambda: [(c["name"], c["image"]) for c in
                                    stored(k, DEPLOYMENTS, "checkout")["spec"]["template"]["spec"]["containers"]],
                "argo": lambda: stored(k, ROLLOUTS, "checkout").get("status"),
            }[lever]()

    expected = {
        "replicas": 4,
        "service": {"app": "checkout", "version": "v2"},
        "httproute": [0, 100],
        "rolling": [("app", "ghcr.io/stefanprodan/podinfo:6.7.1")],
        "argo": {"abort": True},
    }
    assert asyncio.run(scenario()) == expected[lever]


@pytest.mark.parametrize("lever", sorted(MANIFESTS))
def test_watching_writes_nothing(lever: str, tmp_path: Path) -> None:
    """A read-only session only takes snapshots and asks for weights: not one write may go out."""
    async def scenario() -> list:
        async with kmock_cluster(tmp_path) as (k, kubeconfig):
            for doc in manifests(*MANIFESTS[lever]):
                seed(k, RESOURCES[doc["kind"]], doc)
            platform = KubernetesPlatform(_spec_on(kubeconfig, lever))
            for tick in range(3):
                snap = await platform.snapshot(["v1", "v2"], float(tick))
                assert snap.error is None, snap.error
                await platform.weights()
            await platform.close()
            return writes(k) + [r for r in list(k) if r.method.value == "GET"][:1]

    sent = asyncio.run(scenario())
    assert len(sent) == 1 and sent[0].method.value == "GET"  # reads happened, writes did not


@pytest.mark.parametrize(("lever", "strategy", "problems"), [
    ("service", "canary", ["platform.lever: 'service' switches all traffic at once: use it with strategy kind "
                           "'blue-green', or lever 'replicas' or 'httproute' for 'canary'"]),
    ("rolling", "blue-green", ["platform.lever: 'rolling' drives a rolling update: use it with strategy kind "
                               "'rolling', not 'blue-green'",
                               "platform.images: lever 'rolling' needs the candidate's image (images.v2 = \"...\")"]),
])
def test_lever_and_strategy_must_fit(lever: str, strategy: str, problems: list[str]) -> None:
    data = tomllib.loads((EXAMPLES / f"{lever}.toml").read_text())
    data["strategy"] = {"kind": strategy, "steps": [50]}
    data["platform"].pop("images", None)
    with pytest.raises(SpecError) as err:
        parse_spec(data, "x.toml")
    assert err.value.lines() == [f"x.toml: {p}" for p in problems]


def test_ring_and_dark_examples_load_on_the_httproute_lever() -> None:
    for stem, kind in PATTERNS.items():
        spec = load_spec(EXAMPLES / f"{stem}.toml")
        assert spec.platform.options["lever"] == "httproute" and spec.strategy.kind == kind
    ring = load_spec(EXAMPLES / "ring.toml").strategy
    assert [s.match.describe() for s in ring.steps if s.match] == ["header X-User-Group in (staff)"]
    assert [s.mirror for s in load_spec(EXAMPLES / "dark.toml").strategy.steps if s.mirror] == [50]


@pytest.mark.parametrize(("change", "problem"), [
    (lambda d: d["strategy"].update(sticky={"header": "X-User-Id"}),
     "strategy.sticky: lever 'httproute' cannot keep a user on one version (no session persistence in "
     "Gateway API's standard channel): drop sticky, or give the users a ring with a header cohort"),
    (lambda d: d.update(strategy={"kind": "ab", "split": 50, "duration": "10m"}),
     "strategy.kind: an A/B needs sticky users and an HTTPRoute splits requests, not users (no session "
     "persistence in Gateway API's standard channel): use the built-in router or HAProxy"),
    (lambda d: d["platform"].update(lever="replicas"),
     "strategy.rings[0].match: "),
])
def test_what_an_httproute_cannot_do_is_refused_in_one_line(change, problem: str) -> None:
    data = tomllib.loads((EXAMPLES / "ring.toml").read_text())
    change(data)
    with pytest.raises(SpecError) as err:
        parse_spec(data, "x.toml")
    assert len(err.value.lines()) == 1 and err.value.lines()[0].startswith(f"x.toml: {problem}")
