"""The Textual app: the operator's screen and the wallboard over one Driver."""

from tui.app.app import ReleaseApp

__all__ = ["ReleaseApp"]
