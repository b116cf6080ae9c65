"""Modal screens shared by every layout: confirm, set weight, help."""

from tui.app.components.confirm import ConfirmScreen
from tui.app.components.help import HelpScreen
from tui.app.components.weight import WeightScreen

__all__ = ["ConfirmScreen", "HelpScreen", "WeightScreen"]
