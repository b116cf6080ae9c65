"""Gateway API HTTPRoute: exact traffic split by backendRef weights, one Service per version.

`spec.rules` is a list, and a JSON merge patch replaces lists whole, so the lever reads the
route, changes only the weights of our backends, and writes all rules back together with the
`resourceVersion` it read: if anyone changed the route meanwhile the server answers 409 and
the lever re-reads and retries (bounded) instead of silently overwriting their change.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from collectors.kubernetes.api import HTTPROUTE, MERGE
from collectors.kubernetes.discovery import percents
from collectors.kubernetes.levers.base import Lever, LeverView, retry_on_conflict
from strategies.ports import PlatformError


class HTTPRouteWeights(Lever):
    name = "httproute"

    @property
    def route(self) -> str:
        return str(self.options.get("httproute") or self.spec.release.service)

    @property
    def backends(self) -> dict[str, str]:
        """Service name per version: `backends = {v1 = "checkout-v1"}`, else "<service>-<version>"."""
        named = self.options.get("backends") or {}
        return {v: str(named.get(v) or f"{self.spec.release.service}-{v}") for v in (self.base, self.cand)}

    async def view(self) -> LeverView:
        route = await self.kube.get_custom(HTTPROUTE, self.route)
        by_name = {name: v for v, name in self.backends.items()}
        totals: dict[str, float] = {}
        for rule in (route.get("spec") or {}).get("rules") or []:
            for ref in rule.get("backendRefs") or []:
                version = by_name.get(ref.get("name"))
                if version is not None:
                    # Gateway API: an omitted weight means 1.
                    totals[version] = totals.get(version, 0.0) + float(ref.get("weight", 1))
        return LeverView(workloads=await self.deployments(), weights=percents(totals),
                         status=_route_status(route))

    async def set_weight(self, weight: int) -> None:
        wanted = {self.base: 100 - weight, self.cand: weight}

        async def update() -> None:
            route = await self.kube.get_custom(HTTPROUTE, self.route)
            rules = reweigh((route.get("spec") or {}).get("rules") or [], self.backends, wanted)
            if rules is None:
                raise PlatformError(f"kubernetes: HTTPRoute {self.route} in {self.kube.where} has no backendRef "
                                    f"to {' or '.join(sorted(self.backends.values()))}")
            if rules == (route.get("spec") or {}).get("rules"):
                return
            version = (route.get("metadata") or {}).get("resourceVersion")
            body: dict[str, Any] = {"spec": {"rules": rules}}
            if version:
                body["metadata"] = {"resourceVersion": version}
            await self.kube.patch_custom(HTTPROUTE, self.route, body, content_type=MERGE)

        await retry_on_conflict(update, f"HTTPRoute {self.route}")


def reweigh(rules: list[dict[str, Any]], backends: Mapping[str, str],
            wanted: Mapping[str, int]) -> list[dict[str, Any]] | None:
    """New rules with our backends' weights set; None when no rule routes to our backends.

    A rule that routes to the baseline but lacks the candidate gets a candidate backendRef
    modelled on the baseline's (same kind, group, port), so a plain one-backend route works.
    """
    rules = copy.deepcopy(rules)
    by_name = {name: v for v, name in backends.items()}
    touched = False
    for rule in rules:
        refs = rule.get("backendRefs") or []
        seen = {by_name[r["name"]]: r for r in refs if r.get("name") in by_name}
        if not seen:
            continue
        touched = True
        for version, ref in seen.items():
            ref["weight"] = int(wanted[version])
        for version, weight in wanted.items():
            if version not in seen:
                model = next(iter(seen.values()))
                refs.append({**copy.deepcopy(model), "name": backends[version], "weight": int(weight)})
        rule["backendRefs"] = refs
    return rules if touched else None


def _route_status(route: Mapping[str, Any]) -> str:
    """The first parent condition that is not True (Accepted, ResolvedRefs), else 'accepted'."""
    name = (route.get("metadata") or {}).get("name", "")
    for parent in (route.get("status") or {}).get("parents") or []:
        for cond in parent.get("conditions") or []:
            if cond.get("status") != "True":
                return f"HTTPRoute {name}: {cond.get('type')}={cond.get('status')} {cond.get('reason', '')}".strip()
    parents = (route.get("status") or {}).get("parents") or []
    return f"HTTPRoute {name}: accepted by {len(parents)} gateway(s)" if parents else \
        f"HTTPRoute {name}: no gateway has accepted it yet"
