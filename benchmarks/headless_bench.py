"""Headless figures: time to an outcome over the real local stack, and what stuck alert sinks
cost the tick loop. Run: PYTHONPATH=. python benchmarks/headless_bench.py

Reuses the in-test adapters of tests/headless (small, real async objects) for the sink part.
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.headless.support import Platform, Source, make_spec, run
from tests.headless.test_local_stack import local_spec, run_on_stack


def stack_runs() -> None:
    for label, fault in (("healthy", None), ("fault 50% errors", 0.5)):
        began = time.monotonic()
        code, _events, err = run_on_stack(local_spec(), Path(tempfile.mkdtemp()), fault=fault)
        print(f"local stack, {label}: exit {code} in {time.monotonic() - began:.1f}s wall "
              f"(incl. stack start/stop); {err.strip()}")


def stuck_sinks() -> None:
    release = threading.Event()

    class Stuck(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            release.wait(30)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Stuck)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    cases = (("no sinks", []), ("stuck webhook + dead slack", [
        {"kind": "webhook", "url": f"http://127.0.0.1:{server.server_address[1]}/",
         "min_severity": "info", "timeout": "30s", "retries": 0},
        {"kind": "slack", "url": f"http://127.0.0.1:{dead}/", "min_severity": "info",
         "retries": 3}]))
    for label, alerts in cases:
        began = time.monotonic()
        code, _, _, wired = run(make_spec(alert=alerts), Platform(), Source(),
                                Path(tempfile.mkdtemp()), flush=0.5)
        print(f"in-test adapters, {label}: exit {code}, {wired.driver.ticks} ticks, "
              f"{time.monotonic() - began:.2f}s wall (incl. 0.5s flush bound), "
              f"{wired.alerts.undelivered} undelivered")
    release.set()
    server.shutdown()


if __name__ == "__main__":
    stack_runs()
    stuck_sinks()
