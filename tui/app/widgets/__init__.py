"""Widgets by feature. Each renders a `State` through `show(state)` and never fetches anything."""

from tui.app.widgets.charts import Charts
from tui.app.widgets.events import EventLog
from tui.app.widgets.gates import GatesPanel, GatesStrip
from tui.app.widgets.rollout import RolloutBar
from tui.app.widgets.status import StatusBar
from tui.app.widgets.versions import VersionsTable

__all__ = ["Charts", "EventLog", "GatesPanel", "GatesStrip", "RolloutBar", "StatusBar", "VersionsTable"]
