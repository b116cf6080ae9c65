"""Make the README's screenshots with the app itself (App.save_screenshot under Pilot).

The data is deterministic: the real engine and driver run over in-memory adapters and a fixed
clock (tests/tui/support.py), so the pictures only change when the app changes.

    PYTHONPATH=. python scripts/screenshots.py [--out screenshots] [--size 160x48]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "tui")]

from support import make_scene  # noqa: E402

from tui.app import ReleaseApp  # noqa: E402
from tui.app.app import ExtraAction  # noqa: E402

SHOTS = (  # file, scene, wallboard
    ("operate.svg", "operate", False),
    ("paused.svg", "paused", False),
    ("rolled-back.svg", "ended", False),  # long after the rollback: the cause stays
    ("flag.svg", "flag", False),
    ("ring.svg", "ring", False),
    ("wallboard.svg", "operate", True),
    ("wallboard-rolled-back.svg", "ended", True),
)


async def shoot(out: Path, size: tuple[int, int]) -> list[Path]:
    made = []
    for filename, name, wallboard in SHOTS:
        world = await make_scene(name, read_only=wallboard)
        app = ReleaseApp(world.driver, read_only=wallboard, wallboard=wallboard, ticking=False,
                         extra_actions=None if wallboard else {
                             "f": ExtraAction("Inject fault", "inject a fault into the candidate",
                                              world.fault),
                             "F": ExtraAction("Clear fault", "clear the fault", world.clear_fault)},
                         extra_available={"f": lambda name=name: name != "ended",
                                          "F": lambda name=name: name == "ended"})
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            made.append(Path(app.save_screenshot(filename, path=str(out))))
    return made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "screenshots"))
    parser.add_argument("--size", default="160x48", help="terminal COLSxROWS (default 160x48)")
    args = parser.parse_args()
    cols, rows = (int(n) for n in args.size.lower().split("x"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path in asyncio.run(shoot(out, (cols, rows))):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
