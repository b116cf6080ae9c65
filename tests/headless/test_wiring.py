"""Adapter wiring: a missing or broken adapter is one clear line and exit 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from strategies.registry import PLATFORM, REGISTRY, ROUTER, SOURCE, AdapterKind
from tests.headless.support import make_spec
from tui import wiring

ROOT = Path(__file__).resolve().parents[2]


def use_factory(monkeypatch: pytest.MonkeyPatch, layer: str, kind: str, factory: str) -> None:
    """Point one registry kind at another factory for this test."""
    original = wiring.find

    def patched(wanted_layer: str, wanted_kind: str) -> AdapterKind | None:
        found = original(wanted_layer, wanted_kind)
        if found is not None and (wanted_layer, wanted_kind) == (layer, kind):
            return replace(found, factory=factory)
        return found

    monkeypatch.setattr(wiring, "find", patched)


class Broken:
    def __init__(self, spec: object) -> None:
        raise RuntimeError("docker daemon not reachable at unix:///nope.sock\nmore detail")


def test_missing_module_is_reported_as_not_available(monkeypatch):
    use_factory(monkeypatch, PLATFORM, "local", "collectors.nowhere:Nothing")
    with pytest.raises(wiring.AdapterUnavailable, match=r"platform 'local' is not available: "
                       r"collectors\.nowhere:Nothing cannot be loaded"):
        wiring.build_adapters(make_spec())


def test_failing_constructor_is_one_line(monkeypatch):
    use_factory(monkeypatch, PLATFORM, "local", f"{__name__}:Broken")
    with pytest.raises(wiring.AdapterUnavailable) as caught:
        wiring.build_adapters(make_spec())
    assert str(caught.value) == ("platform 'local' could not be set up: "
                                 "docker daemon not reachable at unix:///nope.sock")


def test_router_none_and_platform_build_no_router(monkeypatch):
    class Fake:
        def __init__(self, spec: object) -> None:
            self.spec = spec

    globals()["Fake"] = Fake
    use_factory(monkeypatch, PLATFORM, "local", f"{__name__}:Fake")
    use_factory(monkeypatch, SOURCE, "scrape", f"{__name__}:Fake")
    platform, router, source = wiring.build_adapters(make_spec())
    assert isinstance(platform, Fake) and router is None and isinstance(source, Fake)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tui.cli", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=60, env={"PYTHONPATH": str(ROOT),
                                                                "PATH": "/usr/bin:/bin"})


def test_cli_spec_error_exits_2_with_every_problem_and_no_traceback(tmp_path):
    spec = tmp_path / "release.toml"
    spec.write_text('[release]\nservice = "x"\n[[gate]]\nmetric = "error_rat"\nmax = 1\n')
    result = cli("watch", str(spec), "--headless", cwd=tmp_path)
    assert result.returncode == 2
    assert "release.baseline" in result.stderr and "gate[0].metric" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_cli_bad_until_exits_2_before_starting_anything(tmp_path):
    spec = tmp_path / "release.toml"
    spec.write_text('[release]\nservice = "x"\nbaseline = "a"\ncandidate = "b"\n'
                    '[strategy]\nsteps = [50, 100]\n')
    result = cli("watch", str(spec), "--headless", "--until", "step:7", cwd=tmp_path)
    assert result.returncode == 2 and "step must be a number from 1 to 2" in result.stderr
    assert not (tmp_path / ".release.releasedeck.journal").exists()


def test_every_registered_factory_exists():
    """The registry points at real callables (import only; nothing is started)."""
    import importlib

    named = [k for k in REGISTRY if k.factory]
    assert {k.layer for k in named} == {PLATFORM, ROUTER, SOURCE}
    for adapter in named:
        module, _, path = adapter.factory.partition(":")
        try:
            found: object = importlib.import_module(module)
        except ImportError as exc:  # an optional client library missing on this machine
            pytest.skip(f"{adapter.kind}: {exc}")
        for name in path.split("."):
            found = getattr(found, name)
        assert callable(found), adapter.factory


def test_build_source_uses_the_spec(tmp_path):
    source = wiring.build_source(make_spec())
    assert source.name == "scrape"
    import asyncio

    asyncio.run(source.close())
