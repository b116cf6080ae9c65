"""The one error a spec can raise: every problem of a file, each with its field and reason."""

from __future__ import annotations


class SpecError(Exception):
    """All problems found in one spec file, each as 'file: field: what is wrong'."""

    def __init__(self, path: str, problems: list[tuple[str, str]]):
        self.path = path
        self.problems = problems
        super().__init__(self.render())

    def lines(self) -> list[str]:
        return [f"{self.path}: {where}: {what}" if where else f"{self.path}: {what}"
                for where, what in self.problems]

    def render(self) -> str:
        return "\n".join(self.lines())
