"""Steady traffic for the example: a few threads GET the HAProxy frontend until stopped.

    python examples/docker/load.py http://127.0.0.1:8080 --rate 50 --seconds 3600
Standard library only, so it runs anywhere; prints one summary line per 10 seconds.
"""

from __future__ import annotations

import argparse
import threading
import time
import urllib.error
import urllib.request
from collections import Counter


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second in total")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3600.0, help="stop after this long")
    args = parser.parse_args()
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    end = time.monotonic() + args.seconds
    pause = args.threads / args.rate

    def worker() -> None:
        while time.monotonic() < end:
            started = time.monotonic()
            try:
                with urllib.request.urlopen(args.url, timeout=5) as answer:
                    key = f"{answer.status} {answer.headers.get('X-Releasedeck-Version', '?')}"
            except urllib.error.HTTPError as exc:
                key = f"{exc.code} {exc.headers.get('X-Releasedeck-Version', '?')}"
            except OSError as exc:
                key = f"error {type(exc).__name__}"
            with lock:
                counts[key] += 1
            time.sleep(max(0.0, pause - (time.monotonic() - started)))

    for _ in range(args.threads):
        threading.Thread(target=worker, daemon=True).start()
    while time.monotonic() < end:
        time.sleep(min(10.0, max(0.0, end - time.monotonic())))
        with lock:
            print(", ".join(f"{k}: {n}" for k, n in sorted(counts.items())), flush=True)
            counts.clear()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
