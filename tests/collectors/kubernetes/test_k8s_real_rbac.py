"""RBAC for real: releasedeck as the ServiceAccount bound to examples' Role, on a real API server.

The token is a real bound ServiceAccount token (TokenRequest API), checked by the API server's
authenticator and RBAC authorizer. The example manifests must pass the server's own validation
(a server-side dry run, as `kubectl apply --dry-run=server` does), CRD kinds included.
"""

from __future__ import annotations

import json

import pytest
import yaml

from collectors.kubernetes import KubernetesPlatform
from collectors.kubernetes.api import ROLLOUT
from strategies.ports import PlatformError
from tests.collectors.kubernetes.real_cluster import MANIFESTS, closing, manifest, run, spec_for
from tests.support.kube_namespace import ensure_namespace

pytestmark = pytest.mark.timeout(600)  # the first test also waits for the control plane to start


def role_in(ns, *, drop: tuple[str, str, str] | None = None) -> list[dict]:
    """examples/kubernetes/manifests/rbac.yaml moved into the test's namespace; `drop` removes
    one verb (group, resource, verb) from the Role."""
    docs = [d for d in yaml.safe_load_all((MANIFESTS / "rbac.yaml").read_text().replace("namespace: shop",
                                                                                         f"namespace: {ns.name}")) if d]
    if drop is not None:
        group, resource, verb = drop
        for doc in docs:
            if doc["kind"] == "Role":
                for rule in doc["rules"]:
                    if group in rule["apiGroups"] and resource in rule["resources"]:
                        rule["verbs"] = [v for v in rule["verbs"] if v != verb]
    return docs


def test_example_manifests_pass_a_server_side_dry_run(kube_cluster, kube_namespace) -> None:
    ns = kube_namespace
    ensure_namespace(ns, "shop")
    files = sorted(p.name for p in MANIFESTS.glob("*.yaml"))
    assert files == ["deployments.yaml", "httproute.yaml", "rbac.yaml", "rolling.yaml", "rollout.yaml",
                     "service-bluegreen.yaml", "service.yaml"]
    accepted = []
    for name in files:
        docs = manifest(name)
        answers = ns.create(docs, namespace="shop", dry_run=True)
        accepted += [(name, a["kind"], a["metadata"]["name"]) for a in answers]
    assert len(accepted) == 13, accepted  # every document of every file
    assert ("rollout.yaml", "Rollout", "checkout") in accepted
    assert ("httproute.yaml", "HTTPRoute", "checkout") in accepted
    # a dry run stores nothing
    stored = json.loads(ns.apps.list_namespaced_deployment("shop", _preload_content=False).data)["items"]
    assert stored == []


def test_the_crd_schema_rejects_what_the_real_projects_reject(kube_namespace) -> None:
    """The installed CRDs are the projects' own: their validation is live (a weight over the
    Gateway API maximum, a Rollout step of an unknown shape)."""
    ns = kube_namespace
    route = manifest("httproute.yaml")[2]
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = 1_000_001
    with pytest.raises(Exception, match="1000000"):
        ns.create([route], dry_run=True)
    rollout = manifest("rollout.yaml")[0]
    rollout["spec"]["strategy"]["canary"]["steps"][0] = {"setWeight": "a lot"}
    with pytest.raises(Exception, match="setWeight"):
        ns.create([rollout], dry_run=True)


def test_every_lever_works_under_the_example_role(kube_namespace) -> None:
    ns = kube_namespace
    ns.create(role_in(ns))
    ns.create(manifest("deployments.yaml") + manifest("httproute.yaml") + manifest("rollout.yaml"))
    account = ns.kubeconfig_for("releasedeck")

    async def scenario() -> dict[str, str | None]:
        errors: dict[str, str | None] = {}
        for lever, options in (("replicas", {}), ("httproute", {"backends": {"v1": "checkout-v1", "v2": "checkout-v2"},
                                                                "deployments": {"v1": "checkout-v1",
                                                                                "v2": "checkout-v2"}}),
                               ("argo", {"rollout": "checkout"})):
            platform = KubernetesPlatform(spec_for(ns, lever, kubeconfig=account, **options))
            try:
                await platform.set_weights({"v1": 75, "v2": 25})
                snap = await platform.snapshot(["v1", "v2"], 1.0)
                errors[lever] = snap.error
                if lever == "argo":
                    lever_obj = await platform.lever()
                    await lever_obj.abort()  # rollouts/status
            finally:
                await platform.close()
        return errors

    assert run(scenario()) == {"replicas": None, "httproute": None, "argo": None}
    assert ns.deployment("checkout-v2")["spec"]["replicas"] == 1
    rollout = ns.read(f"{ROLLOUT.group}/{ROLLOUT.version}", "Rollout", "checkout")
    assert rollout["status"]["abort"] is True


def test_the_service_switch_works_under_the_example_role(kube_namespace) -> None:
    ns = kube_namespace
    ns.create(role_in(ns) + manifest("deployments.yaml") + manifest("service-bluegreen.yaml"))
    platform = KubernetesPlatform(spec_for(ns, "service", strategy={"kind": "blue-green"},
                                           kubeconfig=ns.kubeconfig_for("releasedeck")))
    run(closing(platform, platform.set_weights({"v1": 0, "v2": 100})))
    svc = json.loads(ns.core.read_namespaced_service("checkout", ns.name, _preload_content=False).data)
    assert svc["spec"]["selector"] == {"app": "checkout", "version": "v2"}


def test_a_role_missing_a_verb_is_one_line_naming_it(kube_namespace) -> None:
    ns = kube_namespace
    ns.create(role_in(ns, drop=("apps", "deployments", "patch")))
    ns.create(manifest("deployments.yaml") + manifest("service.yaml"))
    platform = KubernetesPlatform(spec_for(ns, "replicas", kubeconfig=ns.kubeconfig_for("releasedeck")))

    async def scenario() -> tuple[str | None, str]:
        snap = await platform.snapshot(["v1", "v2"], 1.0)  # reading is still allowed
        with pytest.raises(PlatformError) as refused:
            await platform.set_weights({"v1": 75, "v2": 25})
        return snap.error, str(refused.value)

    read_error, message = run(closing(platform, scenario()))
    assert read_error is None
    assert "\n" not in message
    assert message.startswith(f"kubernetes: cannot patch deployments/checkout-v2 in namespace {ns.name} on "
                              f"{ns.plane.server}: forbidden by RBAC (")
    assert f'User "system:serviceaccount:{ns.name}:releasedeck" cannot patch resource "deployments" in API group ' \
           f'"apps"' in message
    assert ns.deployment("checkout-v2")["spec"]["replicas"] == 0


def test_a_role_that_cannot_list_pods_shows_in_the_snapshot(kube_namespace) -> None:
    ns = kube_namespace
    ns.create(role_in(ns, drop=("", "pods", "list")))
    ns.create(manifest("deployments.yaml"))
    platform = KubernetesPlatform(spec_for(ns, "replicas", kubeconfig=ns.kubeconfig_for("releasedeck")))
    snap = run(closing(platform, platform.snapshot(["v1", "v2"], 1.0)))
    assert snap.error is not None and "\n" not in snap.error
    assert snap.error.startswith(f"kubernetes: cannot list pods in namespace {ns.name} on {ns.plane.server}: "
                                 "forbidden by RBAC (")


def test_an_expired_or_foreign_token_is_unauthorized(kube_namespace) -> None:
    ns = kube_namespace
    ns.create(manifest("deployments.yaml"))
    kubeconfig = ns.plane.kubeconfig_for_token(f"bogus-{ns.name}", "not-a-token", ns.name)
    platform = KubernetesPlatform(spec_for(ns, "replicas", kubeconfig=kubeconfig))
    snap = run(closing(platform, platform.snapshot(["v1", "v2"], 1.0)))
    assert snap.error is not None and "\n" not in snap.error
    assert "unauthorized: the credentials in the kubeconfig were refused" in snap.error
