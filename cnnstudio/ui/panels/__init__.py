"""The window's side panels: block palette, inspector, summary table and problems list.

Panels only show the Document and turn user input into `document.edit(...)` calls; they follow
its signals (graph_event, analysis_changed, project_replaced) to refresh.
"""

from cnnstudio.ui.panels.inspector import InspectorPanel
from cnnstudio.ui.panels.palette import BLOCK_MIME, PalettePanel
from cnnstudio.ui.panels.summary import ProblemsPanel, SummaryPanel

__all__ = ["BLOCK_MIME", "InspectorPanel", "PalettePanel", "ProblemsPanel", "SummaryPanel"]
