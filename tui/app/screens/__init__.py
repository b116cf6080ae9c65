"""One module per screen: the operator's dashboard and the wallboard."""

from tui.app.screens.base import StateScreen
from tui.app.screens.dashboard import DashboardScreen
from tui.app.screens.wallboard import WallboardScreen

__all__ = ["DashboardScreen", "StateScreen", "WallboardScreen"]
