"""The pure model core: block declarations, graph, analysis, templates and project files.

Nothing in this package imports torch, Qt or pyqtgraph (a test enforces it), so live
validation is instant and testable without a display.
"""

from cnnstudio.core.analysis import Analysis, BlockInfo, Diagnostic, analyze
from cnnstudio.core.graph import Block, Edge, EventKind, Graph, GraphError, GraphEvent

__all__ = [
    "Analysis",
    "Block",
    "BlockInfo",
    "Diagnostic",
    "Edge",
    "EventKind",
    "Graph",
    "GraphError",
    "GraphEvent",
    "analyze",
]
