"""Generic webhook: the alert as a JSON body, optionally signed with HMAC-SHA256.

The signature lets the receiver check the body came from us: `X-Releasedeck-Signature:
sha256=<hex of HMAC(secret, body)>`. The secret is read from the environment variable the spec
names, at send time, and never appears in an error, a log line or an event.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from collectors.alerts.common import DeliveryError, HttpSink, alert_dict, encode, post_json
from strategies.model import Severity
from strategies.ports import Alert

SIGNATURE_HEADER = "X-Releasedeck-Signature"


def sign(secret: str, body: bytes) -> str:
    """The header value for a body: 'sha256=' + hex digest."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class WebhookSink(HttpSink):
    name = "webhook"

    def __init__(self, url: str, *, min_severity: Severity = Severity.WARNING,
                 secret_env: str = "", timeout: float = 5.0):
        super().__init__(url, timeout=timeout)
        self.min_severity = min_severity
        self.secret_env = secret_env

    async def send(self, alert: Alert) -> None:
        body = encode(alert_dict(alert))
        headers: dict[str, str] = {}
        if self.secret_env:
            secret = os.environ.get(self.secret_env)
            if not secret:
                raise DeliveryError(f"{self.name}: environment variable {self.secret_env} "
                                    "is not set (needed to sign the payload)")
            headers[SIGNATURE_HEADER] = sign(secret, body)
        await post_json(self.client, self.name, self.url, body, headers)
