"""Kubernetes API failures → one line a person can act on.

The API server answers errors with a `Status` object (reason, message, code); a path it does
not serve at all (a CRD that is not installed) gets a plain-text "404 page not found". Both,
plus transport failures, become a `PlatformError` that names what was tried, where, and why.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes.client.exceptions import ApiException

from strategies.ports import PlatformError


class KubeError(PlatformError):
    """A refused or failed API call; `code` is the HTTP status (0 when none came back)."""

    def __init__(self, message: str, code: int = 0, reason: str = ""):
        super().__init__(message)
        self.code = code
        self.reason = reason

    @property
    def conflict(self) -> bool:
        return self.code == 409

    @property
    def not_found(self) -> bool:
        return self.code == 404


def status_body(exc: ApiException) -> dict[str, Any]:
    """The `Status` object of an error response, or {} when the body is not one."""
    raw = exc.body
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        body = json.loads(raw or "")
    except ValueError:
        return {}
    return body if isinstance(body, dict) and body.get("kind") == "Status" else {}


_HINTS = {
    401: "unauthorized: the credentials in the kubeconfig were refused",
    403: "forbidden by RBAC",
    404: "not found",
    409: "conflict: the object changed since it was read",
    422: "rejected as invalid",
    429: "throttled by the API server",
}


def describe(exc: BaseException, action: str, where: str) -> KubeError:
    """Turn any failure of one API call into a KubeError with a one-line message.

    `action` is what we tried ("patch deployments/checkout-v2"), `where` the namespace or server.
    """
    if isinstance(exc, KubeError):
        return exc
    if isinstance(exc, ApiException):
        code = int(exc.status or 0)
        status = status_body(exc)
        reason = str(status.get("reason") or exc.reason or "")
        message = _one_line(str(status.get("message") or ""))
        hint = _HINTS.get(code, f"HTTP {code} {reason}".strip())
        if code == 404 and not status:
            hint = "the API server does not serve this resource (is the CRD installed?)"
        text = f"kubernetes: cannot {action} in {where}: {hint}"
        if message:
            text += f" ({message})"
        return KubeError(text, code, reason)
    detail = _one_line(str(exc)) or type(exc).__name__
    return KubeError(f"kubernetes: cannot {action} in {where}: {_transport(detail)}")


def _transport(detail: str) -> str:
    """Short names for the usual urllib3 failures, which otherwise run to several lines."""
    lowered = detail.lower()
    if "timed out" in lowered or "timeout" in lowered:
        return "API server did not answer in time"
    if "connection refused" in lowered or "failed to establish" in lowered:
        return "API server unreachable (connection refused)"
    if "certificate" in lowered or "ssl" in lowered:
        return f"TLS failure talking to the API server ({detail[:160]})"
    return detail[:200]


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]
