"""scripts/screenshots.py makes the README's pictures with the app itself: it must keep running
as the app changes (it once broke on a changed argument and nobody saw it until a refresh)."""

from __future__ import annotations

import asyncio
import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_screenshot_script_draws_every_picture(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("screenshots", ROOT / "scripts" / "screenshots.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    made = asyncio.run(script.shoot(tmp_path, (80, 24)))
    assert sorted(p.name for p in made) == sorted(name for name, _scene, _wall in script.SHOTS)
    for path in made:
        text = path.read_text()
        assert text.startswith("<svg") and "releasedeck" in text, path
        assert not re.search(r"Traceback|Error", text), path
