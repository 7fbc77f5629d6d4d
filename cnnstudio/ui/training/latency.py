"""Per-block latency in the window: the export dialog's "Time each block" section, its table,
and the heat tint on the canvas with its legend.

The timing is nn/profile.py's, run on the dialog's background thread (one CPU thread, as all of
the window's background work: ui/torch_threads.py). The tint goes through the canvas's one
tint mechanism (CanvasScene.set_tint, which training health uses too) under its own kind, so
the two never wipe each other: the one turned on last shows. Each timed block is tinted by its
share of the forward pass relative to the slowest block's (pale yellow for next to nothing,
red for the slowest); the legend in the canvas's bottom-left corner gives the scale, how the
times were taken, and a button that clears the tint.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QObject, QRect, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QLinearGradient, QPainter, QPalette, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QGraphicsView,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.core import registry
from cnnstudio.ui import theme
from cnnstudio.ui.canvas.items import TINT_STRENGTH
from cnnstudio.ui.canvas.scene import LATENCY_TINT, CanvasScene
from cnnstudio.ui.training.inspect.common import BackgroundTask

if TYPE_CHECKING:  # torch loads when the timing starts, not with the window's menus
    from cnnstudio.nn.profile import BlockTime, LatencyProfile

HEAT = (QColor("#ffe082"), QColor("#fb8c00"), QColor("#d50000"))  # none, half, the slowest
LEGEND_MARGIN = 10
BAR_SIZE = (140, 12)
TABLE_HEIGHT = 230
MAX_TABLE_WIDTH = 900
GUI_RUNS = 30  # timed passes in the window (nn/profile.py's DEFAULT_RUNS for the CLI)
GUI_TIME_LIMIT_S = 20.0  # a big network stops sooner (after nn/profile.py's MIN_RUNS)
Marks = dict[str, tuple[QColor, str]]


def heat_colour(fraction: float) -> QColor:
    """The tint for a block taking `fraction` of the slowest block's time (0..1)."""
    fraction = min(1.0, max(0.0, fraction))
    if fraction <= 0.5:
        return theme.mix(HEAT[0], HEAT[1], fraction * 2)
    return theme.mix(HEAT[1], HEAT[2], fraction * 2 - 1)


def latency_marks(profile: LatencyProfile) -> Marks:
    """block id -> (tint, tooltip line) for every timed block."""
    top = max((block.share for block in profile.blocks), default=0.0) or 1.0
    return {block.block_id: (heat_colour(block.share / top),
                             f"Latency on this computer: {block.describe()}")
            for block in profile.blocks}


def canvas_marks(profile: LatencyProfile, scene: CanvasScene) -> tuple[Marks, int]:
    """The marks of the blocks the canvas shows (same id and type as in the run), and how many
    of the run's blocks it does not show (the network changed since). No marks when it shows
    fewer than half of them: that is another network, whose blocks share a few ids by chance
    (every network drawn from a template has an 'input')."""
    graph = scene.document.graph
    marks = latency_marks(profile)
    shown = {block.block_id: marks[block.block_id] for block in profile.blocks
             if block.block_id in graph and _type_name(graph.block(block.block_id).type)
             == block.type_name}
    if 2 * len(shown) < len(marks):
        shown = {}
    return shown, len(marks) - len(shown)


def _type_name(type_id: str) -> str:
    return registry.get(type_id).display_name if registry.is_known(type_id) else type_id


# -- the legend on the canvas --------------------------------------------------------------------


class HeatBar(QWidget):
    """The colour scale as the blocks show it (the tint over the theme's block colour)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFixedSize(*BAR_SIZE)

    def paintEvent(self, _event: Any) -> None:  # noqa: N802 (Qt's name)
        colours = theme.current()
        painter = QPainter(self)
        rect = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        gradient = QLinearGradient(rect.topLeft(), rect.topRight())
        for stop in range(11):
            tint = heat_colour(stop / 10)
            gradient.setColorAt(stop / 10, theme.mix(colours.block, tint, TINT_STRENGTH))
        painter.setBrush(gradient)
        painter.setPen(QPen(colours.block_border, 1.0))
        painter.drawRoundedRect(rect, 3, 3)


class LatencyLegend(QFrame):
    """What the latency tint means, in the canvas view's bottom-left corner while it shows;
    its ✕ clears the tint. One per view (`for_view`)."""

    def __init__(self, view: QGraphicsView) -> None:
        super().__init__(view)
        self.setObjectName("latency_legend")
        self.view = view
        self.title = QLabel("<b>Latency</b>")
        self.clear_button = QToolButton()
        self.clear_button.setText("✕")
        self.clear_button.setAutoRaise(True)
        self.clear_button.setToolTip("Clear the latency tint")
        self.clear_button.clicked.connect(self.clear)
        self.low = QLabel("0%")
        self.high = QLabel()
        self.bar = HeatBar()
        self.setting = QLabel()
        self.setting.setObjectName("latency_setting")
        head = QHBoxLayout()
        head.addWidget(self.title)
        head.addStretch(1)
        head.addWidget(self.clear_button)
        scale = QHBoxLayout()
        scale.addWidget(self.low)
        scale.addWidget(self.bar)
        scale.addWidget(self.high)
        scale.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 6)
        layout.setSpacing(2)
        layout.addLayout(head)
        layout.addLayout(scale)
        layout.addWidget(self.setting)
        self.hide()
        view.installEventFilter(self)
        self.scene().tint_changed.connect(self._follow_tint)
        self.scene().document.project_replaced.connect(self.clear)  # another network

    @classmethod
    def for_view(cls, view: QGraphicsView) -> LatencyLegend:
        legend = view.findChild(cls)
        return legend if legend is not None else cls(view)

    def scene(self) -> CanvasScene:
        return self.view.scene()

    def show_profile(self, profile: LatencyProfile) -> None:
        top = max(profile.blocks, key=lambda block: block.share)
        self.high.setText(f"{top.share:.0%}")
        self.bar.setToolTip(f"Each block's share of the forward pass: from none (left) to the "
                            f"slowest block's {top.share:.0%} (right)")
        self.setting.setText(f"{profile.setting()}\nhover a block for its time")
        self._follow_tint()

    def clear(self) -> None:
        self.scene().set_tint(LATENCY_TINT, None)

    def _follow_tint(self) -> None:
        shown = self.scene().tint_kind() == LATENCY_TINT
        if shown:
            self.apply_theme()
            self.adjustSize()
            self.place()
            self.raise_()
        self.setVisible(shown)

    def apply_theme(self) -> None:
        """A card in the canvas's colours, as the blocks and the overview are drawn."""
        colours = theme.current()
        style = (f"QFrame#latency_legend {{ background: {colours.block.name()}; "
                 f"border: 1px solid {colours.block_border.name()}; border-radius: 6px; }} "
                 f"QLabel, QToolButton {{ color: {colours.text.name()}; }} "
                 f"QLabel#latency_setting {{ color: {colours.subtext.name()}; }}")
        if self.styleSheet() != style:  # a new style sheet sends a change event back
            self.setStyleSheet(style)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt's name)
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:  # the theme changed
            self.apply_theme()

    def place(self) -> None:
        """In the bottom-left corner of the view's viewport."""
        area = self.view.viewport().geometry()
        size = self.sizeHint()
        self.setGeometry(QRect(area.left() + LEGEND_MARGIN,
                               area.bottom() - size.height() - LEGEND_MARGIN,
                               size.width(), size.height()))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        # isHidden, not isVisible: a legend turned on while the canvas's page is hidden (the
        # export dialog over the Training page) is placed when that page shows again; after
        # the event, once the view has laid out its viewport (the filter sees it first)
        if (watched is self.view and event.type() in (QEvent.Type.Resize, QEvent.Type.Show)
                and not self.isHidden()):
            QTimer.singleShot(0, self.place)
        return False


def show_on_canvas(profile: LatencyProfile, view: QGraphicsView) -> tuple[int, int]:
    """Tint the blocks of `view`'s canvas and show the legend: (blocks tinted, blocks of the
    run the canvas does not show). Nothing changes when no block matches."""
    scene = view.scene()
    marks, missing = canvas_marks(profile, scene)
    if marks:
        legend = LatencyLegend.for_view(view)
        scene.set_tint(LATENCY_TINT, marks)
        legend.show_profile(profile)
    return len(marks), missing


# -- the table and the export dialog's section ---------------------------------------------------


class LatencyTable(QTableWidget):
    """The blocks, slowest first, with nn/profile.py's columns; the share cell carries the tint
    its block gets on the canvas."""

    def __init__(self, parent: QWidget | None = None) -> None:
        from cnnstudio.nn.profile import COLUMNS

        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(list(COLUMNS))
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setWordWrap(False)
        rows = self.verticalHeader()
        rows.hide()
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMinimumHeight(TABLE_HEIGHT)
        self._ids: list[str] = []

    def show_profile(self, profile: LatencyProfile) -> None:
        marks = latency_marks(profile)
        blocks: list[BlockTime] = profile.ranked()
        self._ids = [block.block_id for block in blocks]
        self.setRowCount(len(blocks))
        base = self.palette().color(QPalette.ColorRole.Base)
        for row, block in enumerate(blocks):
            for column, text in enumerate(block.cells()):
                item = QTableWidgetItem(text)
                if column >= 3:  # MACs, ms, share
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                item.setToolTip(marks[block.block_id][1] if column == 5 else text)
                self.setItem(row, column, item)
            tint = theme.mix(base, marks[block.block_id][0], 0.6)
            self.item(row, 5).setBackground(tint)
            self.item(row, 5).setForeground(QColor("#1c1f24"))  # dark text on the light tints
        self.resizeColumnsToContents()
        needed = (self.horizontalHeader().length() + 2 * self.frameWidth()
                  + self.verticalScrollBar().sizeHint().width())
        self.setMinimumWidth(min(needed, MAX_TABLE_WIDTH))  # the dialog widens to show it

    def block_ids(self) -> list[str]:
        """The block ids in the rows' order (row 0: the slowest)."""
        return list(self._ids)


class LatencySection(QGroupBox):
    """Time each block of the dialog's run, show the table, tint the canvas.

    `run_dir` gives the run folder the dialog names; `view` is the window's canvas view (None
    when the dialog has no window: then the tint cannot be shown, and the button says why)."""

    busy_changed = Signal()

    def __init__(self, run_dir: Callable[[], str], view: QGraphicsView | None,
                 parent: QWidget | None = None) -> None:
        super().__init__("Time on this computer", parent)
        self._run_dir = run_dir
        self.view = view
        self.profile: LatencyProfile | None = None
        self.error = ""
        self.blocked = False  # while the dialog exports: timing then would be slowed by it
        self._task = BackgroundTask(self)
        self._task.done.connect(self._done)
        self._task.failed.connect(self._failed)
        self._task.progress.connect(self._progress)
        self.time_button = QPushButton("Time each block")
        self.time_button.setToolTip(f"Run the model on one image {GUI_RUNS} times (about "
                                    f"{GUI_TIME_LIMIT_S:.0f} s at most) on this computer's CPU "
                                    "and time each block: the median of the runs")
        self.time_button.clicked.connect(self.start)
        self.show_button = QPushButton("Show on canvas")
        self.show_button.clicked.connect(self.show_on_canvas)
        self.clear_button = QPushButton("Clear tint")
        self.clear_button.clicked.connect(self.clear_canvas)
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.note = QLabel("Which block costs the time? Times each block of the run's model "
                           "on this computer.")
        self.note.setWordWrap(True)
        self.table = LatencyTable()
        self.table.hide()
        buttons = QHBoxLayout()
        buttons.addWidget(self.time_button)
        buttons.addWidget(self.progress, 1)
        buttons.addStretch(0)
        buttons.addWidget(self.show_button)
        buttons.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.note)
        layout.addWidget(self.table, 1)
        if view is not None:
            view.scene().tint_changed.connect(self.update_buttons)
        self.update_buttons()

    @property
    def running(self) -> bool:
        return self._task.running

    def set_blocked(self, blocked: bool) -> None:
        self.blocked = blocked
        self.update_buttons()

    def update_buttons(self, *_args: Any) -> None:
        """Enable what can be done now."""
        busy = self._task.running or self.blocked
        self.time_button.setEnabled(not busy and bool(self._run_dir().strip()))
        self.show_button.setEnabled(self.profile is not None and self.view is not None
                                    and not self._task.running)
        self.show_button.setToolTip("" if self.view is not None else
                                    "Open this dialog from the main window (File → Export "
                                    "Trained Model) to see the times on the canvas")
        tinted = self.view is not None and self.view.scene().tint_kind() == LATENCY_TINT
        self.clear_button.setEnabled(tinted)

    def start(self) -> None:
        from cnnstudio.nn.profile import profile_run

        run = self._run_dir().strip()
        if not run or self._task.running:
            return
        self.error = ""
        self.note.setStyleSheet("")
        self.note.setText("Timing each block…")
        self.progress.setRange(0, GUI_RUNS)
        self.progress.setValue(0)
        self.progress.show()
        self._task.start(lambda progress: profile_run(run, runs=GUI_RUNS, progress=progress,
                                                      time_limit_s=GUI_TIME_LIMIT_S))
        self.update_buttons()
        self.busy_changed.emit()

    def _progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    def _done(self, profile: LatencyProfile) -> None:
        self.profile = profile
        self.progress.hide()
        self.table.show_profile(profile)
        self.table.show()
        lines = [f"{profile.network}: {profile.setting()}.", *profile.summary_lines()]
        self.note.setText("<br>".join(html.escape(line) for line in lines))
        self._fit_window()
        self.update_buttons()
        self.busy_changed.emit()

    def _fit_window(self) -> None:
        """Ask the dialog holding the section to grow for the table's columns and the note's
        lines (ExportDialog.fit_contents; the screen's size bounds it)."""
        fit = getattr(self.window(), "fit_contents", None)
        if self.window() is not self and callable(fit):
            fit()

    def _failed(self, message: str) -> None:
        self.error = message
        self.progress.hide()
        self.note.setStyleSheet(f"color: {theme.current().error.name()};")
        self.note.setText("Not timed. " + message)
        self.update_buttons()
        self.busy_changed.emit()

    def show_on_canvas(self) -> None:
        if self.profile is None or self.view is None:
            return
        tinted, missing = show_on_canvas(self.profile, self.view)
        if not tinted:
            self.note.setText("The canvas shows another network than this run: open the run's "
                              "project (its project.cnnproj) to see the times on its blocks.")
            return
        text = f"Tinted {tinted} blocks on the canvas: red for the slowest; hover one for its time."
        if missing:
            text += (f" {missing} of the run's blocks {'is' if missing == 1 else 'are'} not "
                     "on the canvas: the network changed since the run.")
        self.note.setText(text)
        self.update_buttons()

    def clear_canvas(self) -> None:
        if self.view is not None:
            self.view.scene().set_tint(LATENCY_TINT, None)


__all__ = ["HEAT", "LatencyLegend", "LatencySection", "LatencyTable", "canvas_marks",
           "heat_colour", "latency_marks", "show_on_canvas"]
