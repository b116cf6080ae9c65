"""Codes from outside a release: Ctrl-C in a command that only reads (130, one line) and a reader
of standard output that went away (141, no traceback). README, "Exit codes"."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tui import cli, exitcodes

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(str(path) for path in (ROOT / "examples").glob("*.toml"))


def test_a_closed_output_ends_quietly_with_141() -> None:
    """`releasedeck check examples/*.toml | head -1`: head exits after one line, the rest of
    check's output meets a closed pipe. The specs are named many times over so that the output is
    far larger than a pipe's buffer: check cannot finish writing before the reader goes away."""
    reader_r, reader_w = os.pipe()
    proc = subprocess.Popen([sys.executable, "-m", "tui.cli", "check", *EXAMPLES * 300], cwd=ROOT,
                            stdout=reader_w, stderr=subprocess.PIPE)
    os.close(reader_w)
    with os.fdopen(reader_r, "rb") as reader:
        first = reader.readline()  # read one line, then go away like `head -1`
    _, err = proc.communicate(timeout=120)
    assert first.startswith(b"/") and b": ok" in first
    assert proc.returncode == exitcodes.OUTPUT_CLOSED
    assert b"Traceback" not in err and err == b""


@pytest.mark.parametrize("command, target", [
    (["check", EXAMPLES[0]], "tui.check.run_check"),
    (["history", str(ROOT / "examples")], "tui.history.history_command"),
])
def test_ctrl_c_in_a_read_only_command_is_one_line_and_130(
        command: list[str], target: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Python's default SIGINT handler raises KeyboardInterrupt wherever the command is; here it
    is raised by the command's body, as the signal would."""
    def interrupted(*args: object, **kwargs: object) -> int:
        signal.raise_signal(signal.SIGINT)
        raise AssertionError("SIGINT did not interrupt")

    monkeypatch.setattr(target, interrupted)
    assert cli.main(command) == exitcodes.INTERRUPTED
    assert capsys.readouterr().err == "releasedeck: interrupted\n"


def test_a_flag_is_taken_only_as_spelled() -> None:
    """`--headles` was taken for `--headless` (argparse's prefix matching): a typo passed, and a
    script using a prefix would change meaning the day another flag shares it."""
    from tui.cli import build_parser

    parser = build_parser()
    with pytest.raises(SystemExit) as exited:
        parser.parse_args(["demo", "--headles"])
    assert exited.value.code == 2
    with pytest.raises(SystemExit):
        parser.parse_args(["watch", "x.toml", "--read"])
    assert parser.parse_args(["demo", "--headless"]).headless
