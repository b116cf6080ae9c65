"""Gateway API HTTPRoute: exact traffic split by backendRef weights, one Service per version.

Rings and dark launches add two things the lever writes beside the weights (issue 17):
- a ring's cohort is a rule of our own, `releasedeck-cohort-N`, sending the cohort to the
  candidate's Service. It copies the weighted rule's matches and adds a header match to each,
  so Gateway API's precedence (more header matches wins) picks it before the weighted rule,
  whatever the list order. A cookie cohort is a `RegularExpression` match on the `Cookie`
  header (regex support is implementation-specific in Gateway API).
- a dark step is a `RequestMirror` filter on the weighted rule, to the candidate's Service,
  with `percent` (whole percents) or `fraction` (finer shares); both are in the standard
  channel since v1.3.
Only our own rules and our own mirror filter are ever added or removed; everything else in the
route stays as its owner wrote it.

`spec.rules` is a list, and a JSON merge patch replaces lists whole, so the lever reads the
route, changes only the weights of our backends, and writes all rules back together with the
`resourceVersion` it read: if anyone changed the route meanwhile the server answers 409 and
the lever re-reads and retries (bounded) instead of silently overwriting their change.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from typing import Any

from collectors.kubernetes.api import HTTPROUTE, MERGE
from collectors.kubernetes.discovery import percents
from collectors.kubernetes.levers.base import Lever, LeverView, retry_on_conflict
from strategies.cohorts import CohortMatch, Route
from strategies.ports import PlatformError

COHORT_RULE = "releasedeck-cohort-"
"""Name prefix of the rules this lever owns (rule names are in the standard channel)."""


class HTTPRouteWeights(Lever):
    name = "httproute"
    _read: dict[str, Any] | None = None  # the route `view` read this tick, until read back

    @property
    def route(self) -> str:
        return str(self.options.get("httproute") or self.spec.release.service)

    @property
    def backends(self) -> dict[str, str]:
        """Service name per version: `backends = {v1 = "checkout-v1"}`, else "<service>-<version>"."""
        named = self.options.get("backends") or {}
        return {v: str(named.get(v) or f"{self.spec.release.service}-{v}") for v in (self.base, self.cand)}

    async def view(self) -> LeverView:
        self._read = None
        route = await self.kube.get_custom(HTTPROUTE, self.route)
        self._read = route  # the tick's route read: reconcile's read-back reuses it
        by_name = {name: v for v, name in self.backends.items()}
        totals: dict[str, float] = {}
        for rule in (route.get("spec") or {}).get("rules") or []:
            if _ours(rule):
                continue  # a cohort rule: the cohort's share is not the weighted split
            for ref in rule.get("backendRefs") or []:
                version = by_name.get(ref.get("name"))
                if version is not None:
                    # Gateway API: an omitted weight means 1.
                    totals[version] = totals.get(version, 0.0) + float(ref.get("weight", 1))
        return LeverView(workloads=await self.deployments(), weights=percents(totals),
                         status=_route_status(route))

    async def set_weight(self, weight: int) -> None:
        wanted = {self.base: 100 - weight, self.cand: weight}

        await self._rewrite(lambda rules: reweigh(rules, self.backends, wanted))

    async def set_route(self, route: Route) -> None:
        if route.sticky is not None:
            raise PlatformError("kubernetes: an HTTPRoute cannot split by a sticky user key (Gateway API's "
                                "standard channel has no session persistence); use a header cohort")
        await self._rewrite(lambda rules: with_route(rules, self.backends, self.cand, route))

    async def route_differences(self, route: Route) -> tuple[str, ...]:
        """Reconcile's read-back: our cohort rules and mirror filter in the route as stored,
        against what `route` makes of it (other writers' rules are theirs, never judged). Reuses
        the route this tick's `view` read, so holding the route costs no request of its own."""
        if route.sticky is not None:
            return ("an HTTPRoute cannot split by a sticky user key",)
        stored, self._read = self._read, None
        if stored is None:
            stored = await self.kube.get_custom(HTTPROUTE, self.route)
        rules = (stored.get("spec") or {}).get("rules") or []
        wanted = with_route(rules, self.backends, self.cand, route)
        if wanted is None:
            return (f"HTTPRoute {self.route}: no backendRef to "
                    f"{' or '.join(sorted(self.backends.values()))}",)
        return rule_differences(rules, wanted, f"HTTPRoute {self.route}")

    async def _rewrite(self, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]] | None]) -> None:
        """Read, change the rules, write them back with the resourceVersion read (409: again)."""

        async def update() -> None:
            route = await self.kube.get_custom(HTTPROUTE, self.route)
            rules = change((route.get("spec") or {}).get("rules") or [])
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
        if _ours(rule):
            continue  # a cohort rule always sends its cohort to the candidate
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


def with_route(rules: list[dict[str, Any]], backends: Mapping[str, str], candidate: str,
               route: Route) -> list[dict[str, Any]] | None:
    """New rules with our cohort rules and mirror as `route` says; None when no rule routes to
    our backends. Earlier cohort rules and our mirror filter are removed first, so the result
    depends only on the route asked for (applying it twice changes nothing)."""
    target = backends[candidate]
    kept = [_unmirrored(rule, target) for rule in copy.deepcopy(rules) if not _ours(rule)]
    names = set(backends.values())
    weighted = [i for i, rule in enumerate(kept)
                if any(ref.get("name") in names for ref in rule.get("backendRefs") or [])]
    if not weighted:
        return None
    cohort_rules: dict[int, list[dict[str, Any]]] = {}
    for j in weighted:
        rule = kept[j]
        model = _model_ref(rule, names, target)
        made = []
        for i, cohort in enumerate(route.cohorts):
            suffix = f"{i}" if len(weighted) == 1 else f"{i}-{j}"
            made.append(_cohort_rule(rule, cohort.match, {**model, "name": backends[cohort.version], "weight": 1},
                                     f"{COHORT_RULE}{suffix}"))
        cohort_rules[j] = made
        if route.mirror is not None and route.mirror.percent > 0:
            mirror = {k: v for k, v in model.items() if k not in ("weight", "filters")}
            mirror["name"] = backends.get(route.mirror.version, target)
            rule.setdefault("filters", []).append({"type": "RequestMirror",
                                                   "requestMirror": _mirror_share(mirror, route.mirror.percent)})
    out: list[dict[str, Any]] = []
    for j, rule in enumerate(kept):
        out.extend(cohort_rules.get(j, ()))  # before their weighted rule (precedence decides anyway)
        out.append(rule)
    return out


def rule_differences(rules: list[dict[str, Any]], wanted: list[dict[str, Any]],
                     where: str) -> tuple[str, ...]:
    """One line per difference between the stored rules and the rules a route wants (as
    `with_route` makes them from the stored ones): our cohort rules by name, and the other
    rules (where our mirror filter sits). Where our rules stand in the list is not judged:
    Gateway API's precedence picks them wherever they are, so a writer who reorders the list
    is not fought over it."""
    have = {str(r.get("name")): r for r in rules if _ours(r)}
    want = {str(r.get("name")): r for r in wanted if _ours(r)}
    out = [f"{where}: rule {n} missing" for n in sorted(want.keys() - have.keys())]
    out += [f"{where}: rule {n} not wanted" for n in sorted(have.keys() - want.keys())]
    out += [f"{where}: rule {n} changed" for n in sorted(want.keys() & have.keys())
            if want[n] != have[n]]
    others = [r for r in rules if not _ours(r)]
    for i, (stored, rule) in enumerate(zip(others, [r for r in wanted if not _ours(r)],
                                           strict=True)):
        if stored != rule:
            out.append(f"{where}: rule {i + 1}'s mirror filter {_mirror_word(stored, rule)}")
    return tuple(out)


def _mirror_word(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> str:
    def mirrors(rule: Mapping[str, Any]) -> list[Any]:
        return [f for f in rule.get("filters") or [] if f.get("type") == "RequestMirror"]

    have, want = mirrors(stored), mirrors(wanted)
    if len(want) > len(have):
        return "missing"
    if len(have) > len(want):
        return "not wanted"
    return "changed"


def _ours(rule: Mapping[str, Any]) -> bool:
    return str(rule.get("name") or "").startswith(COHORT_RULE)


def _unmirrored(rule: dict[str, Any], target: str) -> dict[str, Any]:
    """The rule without our mirror filter (a RequestMirror to the candidate's Service)."""
    filters = rule.get("filters")
    if filters:
        rest = [f for f in filters if not (f.get("type") == "RequestMirror"
                                           and ((f.get("requestMirror") or {}).get("backendRef") or {})
                                           .get("name") == target)]
        if rest:
            rule["filters"] = rest
        else:
            del rule["filters"]
    return rule


def _model_ref(rule: Mapping[str, Any], names: set[str], target: str) -> dict[str, Any]:
    """The candidate's backendRef in `rule`, else one of ours to model it on (kind, group, port)."""
    refs = [r for r in rule.get("backendRefs") or [] if r.get("name") in names]
    ref = next((r for r in refs if r.get("name") == target), refs[0])
    return {k: copy.deepcopy(v) for k, v in ref.items() if k != "filters"}


def _cohort_rule(rule: Mapping[str, Any], match: CohortMatch, ref: dict[str, Any], name: str) -> dict[str, Any]:
    """The weighted rule's matches, each with the cohort's header match added, one per value."""
    base_matches = rule.get("matches") or [{"path": {"type": "PathPrefix", "value": "/"}}]
    matches = []
    for base in base_matches:
        for value in match.values:
            one = copy.deepcopy(base)
            one["headers"] = [*(one.get("headers") or []), header_match(match, value)]
            matches.append(one)
    out: dict[str, Any] = {"name": name, "matches": matches, "backendRefs": [ref]}
    filters = [f for f in rule.get("filters") or [] if f.get("type") != "RequestMirror"]
    if filters:
        out["filters"] = copy.deepcopy(filters)
    if rule.get("timeouts"):
        out["timeouts"] = copy.deepcopy(rule["timeouts"])
    return out


def header_match(match: CohortMatch, value: str) -> dict[str, str]:
    """An HTTPHeaderMatch for one value: Exact on the header, or a regex on `Cookie` for a cookie
    (`name=value` as a whole cookie, first or after `; `)."""
    if match.header:
        return {"type": "Exact", "name": match.header, "value": value}
    return {"type": "RegularExpression", "name": "Cookie",
            "value": f"(^|;\\s*){re.escape(match.cookie)}={re.escape(value)}(;|$)"}


def _mirror_share(ref: dict[str, Any], percent: float) -> dict[str, Any]:
    """`percent` when it is whole, else `fraction` of 10,000 (the CRD allows one of the two)."""
    if float(percent).is_integer():
        return {"backendRef": ref, "percent": int(percent)} if percent < 100 else {"backendRef": ref}
    return {"backendRef": ref, "fraction": {"numerator": round(percent * 100), "denominator": 10_000}}


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
