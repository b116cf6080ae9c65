"""Traces written by other tools and people: encodings, repeats, orders, other formats.

Each case either replays to the verdict the clean trace gives, or refuses with one line that
names the file (and line) and why, exit 2: never a traceback, never a silent promotion.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strategies.spec import load_spec
from tests.support.traces import Behaviour, trace_lines
from tui.replay import MAX_PROBLEMS, run_replay

SPEC = load_spec(Path(__file__).with_name("fast_replay.toml"))
HEALTHY = [Behaviour("v1", rps=90, weight=80.0), Behaviour("v2", rps=10, weight=20.0)]
FAULTY = [HEALTHY[0], Behaviour("v2", rps=10, weight=20.0, fault_at=25, fault_error_ratio=0.5)]


def replay(path: Path) -> tuple[int, dict | None, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_replay(SPEC, str(path), summary=True, out=out, err=err)
    lines = out.getvalue().splitlines()
    return code, (json.loads(lines[-1]) if lines else None), err.getvalue()


def verdict(body: dict | None) -> tuple[str, float | None]:
    assert body is not None
    return body["outcome"], body["decided_at"]


def write(path: Path, lines: list[str], *, newline: str = "\n", bom: bool = False) -> Path:
    text = ("\ufeff" if bom else "") + "".join(line + newline for line in lines)
    path.write_bytes(text.encode("utf-8"))
    return path


def test_bom_crlf_and_gzip_replay_like_the_plain_file(tmp_path: Path):
    lines = trace_lines(HEALTHY, 90)
    plain = verdict(replay(write(tmp_path / "plain.jsonl", lines))[1])
    assert plain == ("promoted", 61.0)
    assert verdict(replay(write(tmp_path / "b.jsonl", lines, newline="\r\n", bom=True))[1]) \
        == plain
    packed = tmp_path / "t.jsonl.gz"
    packed.write_bytes(gzip.compress("".join(line + "\n" for line in lines).encode()))
    code, body, err = replay(packed)
    assert (code, verdict(body)) == (0, plain), err
    assert "bad trace line" not in err


def test_a_cut_short_gzip_is_one_line_exit_2(tmp_path: Path):
    packed = gzip.compress("".join(line + "\n" for line in trace_lines(HEALTHY, 90)).encode())
    cut = tmp_path / "t.jsonl.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    code, body, err = replay(cut)
    assert code == 2 and body is None
    assert err.splitlines() == [f"{cut}: cannot read trace: the gzip'd file is cut short"]


def test_truncated_last_line_is_reported_and_the_rest_replays(tmp_path: Path):
    lines = trace_lines(FAULTY, 60)
    path = write(tmp_path / "t.jsonl", [*lines, lines[-1][:25]])
    code, body, err = replay(path)
    assert code == 1 and verdict(body) == ("rolled_back", 27.0)
    assert f"{path}:{len(lines) + 1}: bad trace line: not JSON" in err


def test_other_schema_is_refused_with_one_line(tmp_path: Path):
    lines = trace_lines(HEALTHY, 90)
    other = json.loads(lines[3]) | {"schema": 2}
    path = write(tmp_path / "t.jsonl", [*lines[:3], json.dumps(other), *lines[4:]])
    code, body, err = replay(path)
    assert (code, body) == (2, None)
    assert err.splitlines() == [f"{path}:4: schema 2 is not supported (this releasedeck reads "
                                "trace schema 1)"]
    stated = [json.dumps(json.loads(line) | {"schema": 1}) for line in lines]
    assert verdict(replay(write(tmp_path / "s.jsonl", stated))[1]) == ("promoted", 61.0)


def test_a_prometheus_range_answer_is_named_as_such(tmp_path: Path):
    answer = {"status": "success", "data": {"resultType": "matrix", "result": []}}
    path = write(tmp_path / "range.json", [json.dumps(answer)])
    code, _, err = replay(path)
    assert code == 2
    assert err.splitlines()[0].startswith(f"{path}:1: a Prometheus query API answer, not a trace")


def test_versions_named_otherwise_say_so_and_never_promote(tmp_path: Path):
    renamed = [Behaviour("v1", rps=90, weight=80.0), Behaviour("2.0.1", rps=10, weight=20.0)]
    path = write(tmp_path / "t.jsonl", trace_lines(renamed, 90))
    code, body, err = replay(path)
    assert (code, body) == (2, None)
    assert err.splitlines() == [  # one line: what is missing, and what the trace has instead
        f"{path}: no counters lines for the candidate 'v2' of service 'checkout' (baseline "
        "'v1', candidate 'v2'; the trace's other versions: '2.0.1'): the trace cannot judge "
        "this release"]


def test_only_baseline_data_is_refused(tmp_path: Path):
    path = write(tmp_path / "t.jsonl", trace_lines(HEALTHY[:1], 90))
    code, _, err = replay(path)
    assert code == 2 and "no counters lines for the candidate 'v2'" in err


def test_empty_and_blank_traces_exit_2(tmp_path: Path):
    for name, text in (("empty", ""), ("blank", "\r\n\n  \n"), ("bom", "\ufeff")):
        path = tmp_path / f"{name}.jsonl"
        path.write_text(text, encoding="utf-8")
        code, body, err = replay(path)
        assert (code, body) == (2, None), name
        assert "no usable counters lines" in err and "Traceback" not in err


def test_nan_inf_negative_values_are_named_by_line_and_field(tmp_path: Path):
    lines = trace_lines(HEALTHY, 90)
    bad = [lines[0].replace('"requests_total":', '"requests_total":NaN,"x":', 1),
           lines[1].replace('"errors_total":', '"errors_total":-1,"y":', 1),
           lines[2].replace('"requests_total":', '"requests_total":Infinity,"z":', 1)]
    path = write(tmp_path / "t.jsonl", [*bad, *lines[3:]])
    code, body, err = replay(path)
    assert code == 0 and verdict(body) == ("promoted", 61.0)
    assert f"{path}:1: bad trace line: requests_total must be a finite number >= 0" in err
    assert f"{path}:2: bad trace line: errors_total must be a finite number >= 0" in err
    assert f"{path}:3: bad trace line: requests_total must be a finite number >= 0" in err


def test_many_bad_lines_are_counted_not_flooded(tmp_path: Path):
    path = write(tmp_path / "t.jsonl", ["garbage"] * 500)
    code, _, err = replay(path)
    assert code == 2
    assert len(err.splitlines()) == MAX_PROBLEMS + 2
    assert f"{path}: ... and {500 - MAX_PROBLEMS} more bad trace lines" in err


def test_a_different_line_for_the_same_version_and_time_is_reported(tmp_path: Path):
    lines = trace_lines(HEALTHY, 90)
    other = json.loads(lines[4])
    other["requests_total"] += 5
    path = write(tmp_path / "t.jsonl", [*lines, json.dumps(other)])
    code, body, err = replay(path)
    assert code == 0 and verdict(body) == ("promoted", 61.0)
    assert "is already recorded on line 5 with other counters; this line is ignored" in err


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), repeats=st.integers(0, 30), faulty=st.booleans())
def test_any_order_and_repetition_of_lines_gives_the_same_verdict(seed: int, repeats: int,
                                                                  faulty: bool):
    rng = random.Random(seed)
    lines = trace_lines(FAULTY if faulty else HEALTHY, 70)
    shuffled = [*lines, *(rng.choice(lines) for _ in range(repeats))]
    rng.shuffle(shuffled)
    out = io.StringIO()
    clean_out = io.StringIO()
    with tempfile.TemporaryDirectory() as tmp:
        clean = run_replay(SPEC, str(write(Path(tmp) / "a.jsonl", lines)), summary=True,
                           out=clean_out, err=io.StringIO())
        mixed = run_replay(SPEC, str(write(Path(tmp) / "b.jsonl", shuffled)), summary=True,
                           out=out, err=io.StringIO())
    assert mixed == clean
    assert verdict(json.loads(out.getvalue().splitlines()[-1])) == \
        verdict(json.loads(clean_out.getvalue().splitlines()[-1]))


def test_bytes_that_are_not_utf8_are_named_and_the_rest_replays(tmp_path: Path):
    """A Latin-1 or binary line is reported as not UTF-8 (not a misleading JSON error)."""
    lines = trace_lines(HEALTHY, 90)
    clean = verdict(replay(write(tmp_path / "clean.jsonl", lines))[1])
    body = "".join(line + "\n" for line in lines).encode()
    cut = body.index(b"\n", len(body) // 2) + 1
    number = body[:cut].count(b"\n") + 1
    path = tmp_path / "t.jsonl"
    path.write_bytes(body[:cut] + b'\xff\xfe{"ts": 1, "version": "v\xe92"}\n' + body[cut:])
    code, result, err = replay(path)
    assert (code, verdict(result)) == (0, clean)
    assert f"{path}:{number}: bad trace line: not UTF-8 text" in err


def test_a_byte_that_is_not_utf8_inside_a_version_name_is_an_encoding_fault(tmp_path: Path):
    """Latin-1 "v\xe92" inside a JSON string parses as JSON: it is still named as not UTF-8,
    with its byte and column, not reported as an unknown version; a real U+FFFD is text."""
    lines = trace_lines(HEALTHY, 90)
    clean = verdict(replay(write(tmp_path / "clean.jsonl", lines))[1])
    n = next(i for i, line in enumerate(lines) if '"version":"v2"' in line)
    latin = lines[n].replace('"version":"v2"', '"version":"v\u00e92"')
    body = [line.encode() for line in lines]
    body[n] = latin.encode("latin-1")
    body.append(lines[n + 2].replace('"version":"v2"', '"version":"v\ufffd"').encode())
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in body))
    code, result, err = replay(path)
    column = latin.index("\u00e9") + 1
    assert f"{path}:{n + 1}: bad trace line: not UTF-8 text (byte 0xe9 at column {column}): " \
        "a trace is UTF-8" in err
    assert "not in the spec" in err and "'v\ufffd'" in err  # a real U+FFFD: a version name
    assert "udce9" not in err and code == 0 and verdict(result) == clean, err


def _replace(line: str, **fields: object) -> str:
    return json.dumps({**json.loads(line), **fields})


def test_times_a_replay_cannot_order_or_print_are_bad_lines(tmp_path: Path):
    """A NaN `ts` was a traceback (an event cannot be stamped with it), a year past 9999 too;
    each is one bad line now, and the rest replays to the clean verdict."""
    lines = trace_lines(HEALTHY, 90)
    nan = lines[30].replace('"at":', '"ts":NaN,"was":').replace('"ts":"', '"shown":"', 1)
    path = write(tmp_path / "t.jsonl", [*lines[:30], nan, _replace(lines[31], at=1e20),
                                        _replace(lines[32], at=-5.0), *lines[33:]])
    code, body, err = replay(path)
    assert (code, verdict(body)) == (0, ("promoted", 61.0)), err
    assert err.splitlines()[:3] == [
        f"{path}:31: bad trace line: ts nan is not a time from 1970 to 9999 (epoch seconds 0 "
        "to 253402300799)",
        f"{path}:32: bad trace line: at 1e+20 is not a time from 1970 to 9999 (epoch seconds 0 "
        "to 253402300799)",
        f"{path}:33: bad trace line: at -5.0 is not a time from 1970 to 9999 (epoch seconds 0 "
        "to 253402300799)"]


def test_an_instance_count_no_platform_has_is_a_bad_line(tmp_path: Path):
    """`ready: 1e12` stood up a trillion instances each tick: the replay never ended."""
    lines = trace_lines(HEALTHY, 90)
    path = write(tmp_path / "t.jsonl", [*lines[:5], _replace(lines[5], ready=1e12), *lines[6:]])
    code, body, err = replay(path)
    assert (code, verdict(body)) == (0, ("promoted", 61.0)), err
    assert f"{path}:6: bad trace line: ready must be at most 10000 instances, got 1e+12" in err


def test_a_line_without_end_is_read_past_in_pieces(tmp_path: Path):
    """Megabytes with no newline (a binary, a dump pasted in) are one bad line, counted as
    they pass: never held whole (a 300 MB one took 655 MB; bounded_lines reads 1 MB at a
    time)."""
    from strategies import trace

    lines = trace_lines(FAULTY, 60)
    path = tmp_path / "t.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines[:30]))
        handle.write("x" * (3 * trace.MAX_LINE + 17) + "\n")
        handle.write("".join(line + "\n" for line in lines[30:]))
    code, body, err = replay(path)
    assert (code, verdict(body)) == (1, ("rolled_back", 27.0)), err
    assert f"{path}:31: bad trace line: line too long: {3 * trace.MAX_LINE + 18} characters " \
        f"(at most {trace.MAX_LINE})" in err
    with path.open(encoding="utf-8") as handle:
        pieces = list(trace.bounded_lines(handle))
    assert len(pieces) == len(lines) + 1 and max(map(len, pieces)) <= trace.MAX_LINE


def test_a_second_tick_line_at_the_same_time_that_says_otherwise_is_reported(tmp_path: Path):
    """An exact repeat is dropped quietly; a tick line at the same moment with another
    decision time (a hand edit, two recorders merged) is named, and the first one kept."""
    from strategies.trace import tick_line

    t0 = 1_800_000_000.0
    ticks = [tick_line(t0 + k, "checkout", decided=t0 + k + 0.01) for k in range(91)]
    other = tick_line(t0 + 40, "checkout", decided=t0 + 40.5)
    lines = [*trace_lines(HEALTHY, 90), *ticks]
    path = write(tmp_path / "t.jsonl", [*lines, ticks[40], other])
    code, body, err = replay(path)
    assert (code, verdict(body)) == (0, ("promoted", 61.01)), err
    assert err.splitlines()[:-1] == [
        f"{path}:{len(lines) + 2}: bad trace line: a tick at 2027-01-15T08:00:40.000Z is "
        f"already recorded on line {len(lines) - 50} otherwise; this line is ignored"]
