"""Modal screens shared by every layout: confirm, set weight, help, events, run info."""

from tui.app.components.confirm import ConfirmScreen
from tui.app.components.events import EventsScreen
from tui.app.components.help import HelpScreen
from tui.app.components.info import InfoScreen
from tui.app.components.weight import WeightScreen
from tui.runinfo import RunInfo

__all__ = ["ConfirmScreen", "EventsScreen", "HelpScreen", "InfoScreen", "RunInfo", "WeightScreen"]
