"""A Drawn panel shows what a Static would show, and repaints only the lines that changed
(issue 18: a second of a running canary changes a few lines of each panel). Lines repainted
are counted, never timed."""

from __future__ import annotations

import asyncio
import random

from rich.console import Group, RenderableType
from rich.text import Text
from textual.app import App, ComposeResult
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from tui.app.widgets.drawn import Drawn

STYLES = ("", "bold", "dim", "#4ea1ff", "bold #ff9f1c", "red", "green on #202020", "reverse")
WORDS = ("p99", "0.12%", "[0%–7.1%]", "≤5%", "▰▰▰▰", "pass", "✔", "checkout-v2", "日本語", "—", " ", "")


class Pair(App[None]):
    """A Static and a Drawn side by side at the same size, both auto height."""

    CSS = "Static, Drawn { width: 37; height: auto; }"

    def compose(self) -> ComposeResult:
        yield Static(id="static")
        yield Drawn(id="drawn")


def lines_of(widget: Widget) -> list[Strip]:
    return [widget.render_line(y) for y in range(widget.size.height)]


def picture(widget: Widget) -> list[list[tuple[str, object]]]:
    """Each line as (character, style) pairs: what the screen shows, however the line's
    segments are cut (an empty segment shows nothing)."""
    return [[(char, segment.style) for segment in line for char in segment.text]
            for line in lines_of(widget)]


def random_text(rng: random.Random) -> Text:
    text = Text(no_wrap=rng.random() < 0.5, overflow=rng.choice(("fold", "crop", "ellipsis")),
                justify=rng.choice((None, "left", "right", "center")))
    for _ in range(rng.randint(0, 8)):
        text.append(rng.choice(WORDS) + rng.choice(("", " ", "  ", "\n")), style=rng.choice(STYLES))
    text.end = rng.choice(("\n", "\n", "\n", ""))  # one that runs on into the next item, now and then
    return text


def random_group(rng: random.Random) -> Group:
    items: list[RenderableType] = [random_text(rng) for _ in range(rng.randint(1, 5))]
    if rng.random() < 0.3:
        items.insert(rng.randrange(len(items) + 1), Group(random_text(rng), random_text(rng)))
    return Group(*items)


def test_a_drawn_group_shows_the_lines_a_static_shows() -> None:
    """Drawn renders a group piece by piece, and a text line by line, reusing the pieces it
    drew before: over random groups (styles, wide characters, wrapping, justification,
    blank lines, nested groups, a text that runs on into the next), each one drawn after the
    last, the lines are a Static's."""
    async def scenario() -> None:
        app = Pair()
        async with app.run_test(size=(80, 60)) as pilot:
            static, drawn = app.query_one("#static", Static), app.query_one("#drawn", Drawn)
            rng = random.Random(18)
            for case in range(150):
                group = random_group(rng)
                static.update(group)
                drawn.put(case, lambda group=group: group, shape=case)
                await pilot.pause()
                assert drawn.size == static.size, case
                assert picture(drawn) == picture(static), (case, [t.plain for t in group.renderables
                                                                   if isinstance(t, Text)])

    asyncio.run(scenario())


def test_a_changed_line_is_the_only_line_repainted() -> None:
    async def scenario() -> None:
        app = Pair()
        async with app.run_test(size=(80, 24)) as pilot:
            drawn = app.query_one("#drawn", Drawn)
            rows = [f"gate-{n}  0.{n}%  pass" for n in range(10)]

            def show(lines: list[str]) -> bool:
                return drawn.put(tuple(lines), lambda: Group(*(Text(line) for line in lines)), shape=len(lines))

            assert show(rows)
            await pilot.pause()
            assert drawn.size.height == 10
            before = drawn.repaints
            assert not show(list(rows))  # the same facts: nothing redrawn, nothing repainted
            assert drawn.repaints == before
            changed = [*rows[:3], "gate-3  0.9%  FAIL", *rows[4:]]
            assert show(changed)
            assert drawn.repaints == before + 1
            await pilot.pause()
            assert "".join(s.text for s in drawn.render_line(3)).startswith("gate-3  0.9%  FAIL")
            assert drawn.size.height == 10

    asyncio.run(scenario())


def test_a_panel_that_grows_is_laid_out_and_a_new_colour_is_drawn() -> None:
    """A line count the shape did not foresee still gets a layout (never a cut line); a class
    that recolours the panel draws every line again in the new colour."""
    async def scenario() -> None:
        app = Pair()
        app.CSS += " Drawn.-alarm { color: #ff0000; }"
        async with app.run_test(size=(80, 24)) as pilot:
            drawn = app.query_one("#drawn", Drawn)
            drawn.put(1, lambda: Group(Text("one")), shape="same")
            await pilot.pause()
            assert drawn.size.height == 1
            drawn.put(2, lambda: Group(Text("one"), Text("two"), Text("three")), shape="same")
            for _ in range(50):  # bounded: the layout comes with the next screen update
                if drawn.size.height == 3:
                    break
                await pilot.pause()
            assert [s.text.rstrip() for s in lines_of(drawn)] == ["one", "two", "three"]
            colour = lines_of(drawn)[0]
            drawn.add_class("-alarm")
            await pilot.pause()
            recoloured = lines_of(drawn)[0]
            assert recoloured.text == colour.text and recoloured != colour

    asyncio.run(scenario())
