"""Blue-green: one Service, its selector pointing at one version's pods; switch and switch back.

The switch is a strategic-merge patch of one key of `spec.selector` (the version label), so
every other selector key stays as the user wrote it. Switching back is the same patch.
"""

from __future__ import annotations

from collectors.kubernetes.levers.base import Lever, LeverView
from strategies.ports import PlatformError


class ServiceSwitch(Lever):
    name = "service"

    @property
    def service(self) -> str:
        return str(self.options.get("service") or self.spec.release.service)

    async def view(self) -> LeverView:
        svc = await self.kube.get_service(self.service)
        selected = str(((svc.get("spec") or {}).get("selector") or {}).get(self.label) or "")
        weights = {v: (100.0 if v == selected else 0.0) for v in (self.base, self.cand)}
        if selected and selected not in weights:
            weights[selected] = 100.0
        status = f"service {self.service} selects {self.label}={selected}" if selected else \
            f"service {self.service} has no {self.label} in its selector"
        return LeverView(workloads=await self.deployments(), weights=weights if selected else {}, status=status)

    async def set_weight(self, weight: int) -> None:
        if 0 < weight < 100:
            raise PlatformError(f"kubernetes: lever 'service' switches all traffic at once; a {weight}% "
                                "split needs lever = 'replicas' or 'httproute'")
        target = self.cand if weight >= 100 else self.base
        svc = await self.kube.get_service(self.service)
        if ((svc.get("spec") or {}).get("selector") or {}).get(self.label) == target:
            return
        await self.kube.patch_service(self.service, {"spec": {"selector": {self.label: target}}})
