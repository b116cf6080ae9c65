"""What the app can tell about the run it shows beyond the State: the spec text, the router's
address, the instances' logs, the journal. Filled by `demo` / `watch`; shown by the app's `i`
view and its quit dialog. Plain data, no Textual, so headless paths can build it cheaply."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunInfo:
    """Facts about the run the app was started on; filled by `demo` / `watch`, shown by `i`."""

    spec_text: str = ""
    spec_origin: str = ""  # a path, or "built-in demo spec (canary)"
    router: str = ""  # where the service answers through the router (http://127.0.0.1:...)
    logs: str = ""  # directory of the instances' log files
    journal: str = ""
    journal_kept: bool = True  # False: the demo's journal is deleted when it exits
    resume_hint: str = ""  # the command that resumes this rollout, when there is one
    fleet: tuple[str, ...] = ()  # specs / folders `:fleet` lists (watch: --fleet, or the spec's folder)
    # A journal this session only reads (an observer's --journal): `:history` reads it, not the
    # spec's own, which may be another release's record altogether.
    read_journal: str = ""

    def history_paths(self) -> list[str]:
        """What `:history` reads: the spec (its journal, with the strategy) and the journal."""
        if self.read_journal:
            return [self.read_journal]
        paths = [self.spec_origin] if self.spec_origin.endswith(".toml") else []
        return paths + ([self.journal] if self.journal else [])

    def journal_note(self) -> str:
        if not self.journal:
            return "no journal: this session keeps no state of its own"
        if not self.journal_kept:
            return f"the demo's journal ({self.journal}) is deleted on exit: " \
                   "this rollout cannot be resumed"
        return f"the journal {self.journal} keeps the rollout's state" + \
            (f"; `{self.resume_hint}` resumes it" if self.resume_hint else "")
