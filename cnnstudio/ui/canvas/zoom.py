"""The canvas view's zoom: steps, the wheel, Fit, a project's first view, and Fit's spread.

Fit shows the whole network. A tall network fitted into a window would come out so small that
not one name fits on its blocks; Fit then spreads it across the width the window has left, up
to SPREAD_MAX: the rows stay where they are and the blocks widen, so each one shows its name on
a chip at a readable size (detail.py). Only across: a name needs width, and taller blocks in a
wide network would not make room for it. The spread is a floor under the horizontal scale:
zooming in catches up with it, zooming out keeps the network as wide as the window, and Actual
Size removes it. `level()` is the zoom without the spread (the vertical scale).

A project's first view (opened, new, imported) is fitted when the network fits at a readable
zoom and shows its top, the Input, otherwise. Until the user moves the view, a resize (the
window's docks taking their room, a banner) shows it again for the new size.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QTransform, QWheelEvent
from PySide6.QtWidgets import QGraphicsView

from cnnstudio.ui.canvas.detail import Detail, detail_for
from cnnstudio.ui.canvas.overlays import Minimap
from cnnstudio.ui.canvas.scene import CanvasScene

ZOOM_STEP = 1.25
MIN_ZOOM, MAX_ZOOM = 0.05, 4.0
READABLE_ZOOM = 0.8  # a first view fits the network only at this zoom or more
FIRST_ZOOM = 0.9  # the first view of a network too tall to fit readably
FIT_MARGIN = 40.0
SPREAD_MAX = 0.75  # Fit widens blocks to at most this scale (names up to ~25 characters fit)
WHEEL_BASE = 1.0015  # zoom factor per eighth of a degree of wheel rotation


class Zoom:
    """The zoom of `view` (showing `canvas`, with its `minimap`)."""

    def __init__(self, view: QGraphicsView, canvas: CanvasScene, minimap: Minimap) -> None:
        self.view = view
        self.canvas = canvas
        self.minimap = minimap
        self._level = 1.0
        self._spread = 0.0  # the least horizontal scale, set by Fit
        self._fresh = False  # showing a project's first view, untouched by the user

    def level(self) -> float:
        return self._level

    def scales(self) -> tuple[float, float]:
        """Screen pixels per scene unit, across and down (they differ under Fit's spread)."""
        return max(self._level, self._spread), self._level

    def touched(self) -> None:
        """The user moved the view: a resize no longer brings back the first view."""
        self._fresh = False

    def _apply(self, level: float) -> None:
        self._level = max(MIN_ZOOM, min(MAX_ZOOM, level))
        sx, sy = self.scales()
        self.view.setTransform(QTransform.fromScale(sx, sy))
        self.canvas.set_label_room(detail_for(sx, sy) <= Detail.NAME)
        self.minimap.schedule()

    def scale_by(self, factor: float) -> None:
        self.touched()
        self._apply(self._level * factor)

    def reset(self) -> None:
        """Actual size (100 %, no spread), keeping the centre."""
        self.touched()
        centre = self._centre()
        self._spread = 0.0
        self._apply(1.0)
        self.view.centerOn(centre)

    def fit_all(self) -> None:
        """The whole network in view, never magnified beyond 100 %; spread where the plain
        fit would leave no room for names."""
        self.touched()
        self._fit()

    def _fit(self) -> None:
        rect = self.canvas.diagram_rect()
        if rect.isNull():
            return
        rect = rect.adjusted(-FIT_MARGIN, -FIT_MARGIN, FIT_MARGIN, FIT_MARGIN)
        self.canvas.update_scene_rect()
        across, down = self._fits(rect)
        level = min(across, down, 1.0)
        names_fit = detail_for(level, level) >= Detail.NAME_SHAPE
        self._spread = 0.0 if names_fit else min(across, SPREAD_MAX)
        self._apply(level)
        self.view.centerOn(rect.center())

    def _fits(self, rect: QRectF) -> tuple[float, float]:
        """The scales at which `rect` just fits the viewport, across and down."""
        view = self.view.viewport().rect()
        return view.width() / max(rect.width(), 1.0), view.height() / max(rect.height(), 1.0)

    def initial_view(self) -> None:
        """A project's first view: fitted when it fits readably, else its top at 90 %."""
        rect = self.canvas.diagram_rect()
        self._spread = 0.0
        if rect.isNull():
            self._apply(1.0)
        else:
            self.canvas.update_scene_rect()
            margins = rect.adjusted(-FIT_MARGIN, -FIT_MARGIN, FIT_MARGIN, FIT_MARGIN)
            if min(self._fits(margins)) >= READABLE_ZOOM:
                self._fit()
            else:
                self._apply(FIRST_ZOOM)
                height = self.view.viewport().height() / FIRST_ZOOM
                self.view.centerOn(QPointF(rect.center().x(),
                                           rect.top() - FIT_MARGIN + height / 2))
        self._fresh = True

    def resized(self) -> None:
        if self._fresh:
            self.initial_view()
        self.minimap.schedule()

    def wheel(self, event: QWheelEvent) -> None:
        """Zoom, keeping the point under the mouse where it is."""
        delta = event.angleDelta().y()
        if not delta:
            return
        view = self.view
        spot = event.position().toPoint()
        before = view.mapToScene(spot)
        anchor = view.transformationAnchor()
        view.setTransformationAnchor(QGraphicsView.NoAnchor)
        self.scale_by(WHEEL_BASE ** delta)
        view.setTransformationAnchor(anchor)
        view.centerOn(self._centre() - (view.mapToScene(spot) - before))

    def _centre(self) -> QPointF:
        return self.view.mapToScene(self.view.viewport().rect().center())
