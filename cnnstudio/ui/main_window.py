"""The main window: palette, canvas, inspector, summary and problems around one Document.

Every command is a QAction with a shortcut in a menu. The questions the window asks (save
changes?, which file?, which template?) are methods of their own, so tests can answer them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QByteArray, QCoreApplication, QEvent, QPointF, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QFont, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QFileDialog,
    QGridLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSizePolicy,
    QSpacerItem,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cnnstudio import __version__
from cnnstudio.core.files import replace_refusal
from cnnstudio.core.layout import STEP_Y
from cnnstudio.core.project import EXTENSION, Project, ProjectError, load_project, save_project
from cnnstudio.core.summary import PARAMETERS_TIP, format_bytes, memory_breakdown
from cnnstudio.core.templates import new_project
from cnnstudio.ui import theme
from cnnstudio.ui.canvas import CanvasView
from cnnstudio.ui.document import Document
from cnnstudio.ui.fixes import apply_all_repairs, repairable_count
from cnnstudio.ui.import_action import ImportFlow
from cnnstudio.ui.panels.inspector import InspectorPanel
from cnnstudio.ui.panels.palette import PalettePanel
from cnnstudio.ui.panels.summary import ProblemsPanel, SummaryPanel
from cnnstudio.ui.recovery import (
    AUTOSAVE_INTERVAL_MS,
    Autosaver,
    Banner,
    RecoveryEntry,
    pending_recoveries,
)
from cnnstudio.ui.settings_store import MAX_RECENT, SettingsStore
from cnnstudio.ui.start_page import StartPage
from cnnstudio.ui.lab import LabPage
from cnnstudio.ui.training.page import TrainingPage

DEFAULT_TEMPLATE = "keras-mnist"
DEFAULT_DATASET = "mnist-sample"
APP_NAME = "CNN Studio"
BLOCK_W = 170.0
PROJECT_FILTER = f"CNN Studio projects (*{EXTENSION});;All files (*)"
Button = QMessageBox.StandardButton


def default_project() -> Project:
    """The project the window opens with: the Keras-book MNIST network on the MNIST sample."""
    return new_project(DEFAULT_TEMPLATE, dataset={"spec": DEFAULT_DATASET})


def compact(count: float) -> str:
    """12,345,678 -> '12.3 M'."""
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(count) >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count:,.0f}"


def _media_key(sequence: QKeySequence) -> bool:
    """Keys of multimedia keyboards (Cut, Copy, Zoom In) that standard bindings include."""
    return sequence.count() == 1 and sequence[0].key().value >= Qt.Key.Key_Back.value


def valid_colour() -> str:
    return "#81c784" if theme.current().dark else "#2e7d32"


class MainWindow(QMainWindow):
    def __init__(self, document: Document | None = None, *, settings: SettingsStore | None = None,
                 recover: bool = True, autosave_interval_ms: int = AUTOSAVE_INTERVAL_MS) -> None:
        super().__init__()
        self.settings = settings or SettingsStore()
        self.remember_layout = True  # save the window size and docks on close
        given = document is not None
        self.document = document if document is not None else Document(default_project())
        self.document.setParent(self)
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks
                            | QMainWindow.DockOption.AllowTabbedDocks)

        self.canvas = CanvasView(self.document, self)
        self.banner = Banner()
        network_page = QWidget()
        layout = QVBoxLayout(network_page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        layout.addWidget(self.canvas, 1)
        self.pages = QTabWidget()
        self.pages.setDocumentMode(True)
        self.pages.setObjectName("pages")
        self._page_names: list[str] = []
        # the dock layout (state, side widths, bottom height) while another page shows
        self._network_layout: tuple[QByteArray, list[int], int] | None = None
        self.add_page("network", network_page, "Network")
        self.training_page = TrainingPage(self.document)
        self.add_page("training", self.training_page, "Training")
        self.lab_page = LabPage(self.document, runs_root=self.training_page.runs_root)
        self.add_page("lab", self.lab_page, "Convolution lab")
        self.pages.currentChanged.connect(self._page_changed)
        self.setCentralWidget(self.pages)

        self.palette = PalettePanel(document=self.document)
        self.inspector = InspectorPanel(self.document)
        self.summary = SummaryPanel(self.document)
        self.problems = ProblemsPanel(self.document)
        self.bottom_tabs = QTabWidget()
        self.bottom_tabs.setDocumentMode(True)
        self.bottom_tabs.addTab(self.summary, "Summary")
        self.bottom_tabs.addTab(self.problems, "Problems")
        self.palette_dock = self._dock("Blocks", "palette", self.palette,
                                       Qt.DockWidgetArea.LeftDockWidgetArea)
        self.inspector_dock = self._dock("Inspector", "inspector", self.inspector,
                                         Qt.DockWidgetArea.RightDockWidgetArea)
        self.bottom_dock = self._dock("Summary and problems", "bottom", self.bottom_tabs,
                                      Qt.DockWidgetArea.BottomDockWidgetArea)
        self._layout_restored = False

        self._build_status_bar()
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(0)
        self._refresh_timer.timeout.connect(self._refresh_status)
        self.actions: dict[str, QAction] = {}
        self.menu_actions: dict[str, list[QAction]] = {}
        self._build_menus()
        self._wire()

        self.autosaver = Autosaver(self.document, self.settings.directory,
                                   interval_ms=autosave_interval_ms, parent=self)
        self.autosaver.failed.connect(lambda text: self.statusBar().showMessage(text, 10_000))
        self.resize(1400, 900)
        self._show_load_notes(self.document.project)
        if recover:
            self._offer_recovery(adopt=not given)
        self._update_title()
        self._refresh_status()
        self.canvas.setFocus()

    def restore_layout(self) -> None:
        """The window size and dock arrangement of the last session, if any."""
        geometry = self.settings.window_geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = self.settings.window_state()
        if state is not None:
            self._layout_restored = self.restoreState(state)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        if not self._layout_restored:  # the default arrangement, once the window has its size
            self._layout_restored = True
            self.resizeDocks([self.palette_dock, self.inspector_dock], [250, 310],
                             Qt.Orientation.Horizontal)
            self.resizeDocks([self.bottom_dock], [240], Qt.Orientation.Vertical)

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"{name}_dock")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    # -- status bar --------------------------------------------------------------------------

    # -- pages ------------------------------------------------------------------------------

    def add_page(self, name: str, widget: QWidget, title: str) -> None:
        """A main page beside the network editor (training, the convolution lab)."""
        self._page_names.append(name)
        self.pages.addTab(widget, title)

    def show_page(self, name: str) -> None:
        self.pages.setCurrentIndex(self._page_names.index(name))

    def current_page(self) -> str:
        return self._page_names[self.pages.currentIndex()]

    def _page_changed(self, index: int) -> None:
        """The editing docks belong to the network page: hide them elsewhere, then restore
        them exactly (sizes included) on the way back."""
        for position in range(self.pages.count()):  # hidden pages must not widen the centre
            policy = (QSizePolicy.Policy.Preferred if position == index
                      else QSizePolicy.Policy.Ignored)
            self.pages.widget(position).setSizePolicy(policy, policy)
        # now, not at the next layout pass: the docks restored below would otherwise add to the
        # minimum height of the page left behind and grow the window (Training page + docks)
        QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
        docks = (self.palette_dock, self.inspector_dock, self.bottom_dock)
        on_network = self._page_names[index] == "network"
        if on_network:
            if self._network_layout is not None:
                state, widths, height = self._network_layout
                self.restoreState(state)
                self.resizeDocks([self.palette_dock, self.inspector_dock], widths,
                                 Qt.Orientation.Horizontal)
                self.resizeDocks([self.bottom_dock], [height], Qt.Orientation.Vertical)
                self._network_layout = None
        elif self._network_layout is None:
            self._network_layout = (self.saveState(),
                                    [self.palette_dock.width(), self.inspector_dock.width()],
                                    self.bottom_dock.height())
            for dock in docks:
                dock.hide()

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.params_label = QLabel()
        self.macs_label = QLabel()
        self.memory_label = QLabel()
        self.validity_label = QLabel()
        for label in (self.params_label, self.macs_label, self.memory_label, self.validity_label):
            label.setContentsMargins(8, 0, 8, 0)
            bar.addPermanentWidget(label)

    def _refresh_status(self) -> None:
        analysis = self.document.analysis
        training = self.document.project.training
        batch = int(training.get("batch_size", 64))
        optimizer = str(training.get("optimizer", "adam"))
        memory = analysis.memory(batch, optimizer)
        # short, so that messages on the left of the status bar keep their room; the whole
        # sum is in the tooltip and the Summary dock
        frozen = f" ({analysis.non_trainable:,} non-trainable)" if analysis.non_trainable else ""
        self.params_label.setText(f"Parameters {analysis.total_params:,}{frozen}")
        self.params_label.setToolTip(
            f"{analysis.total_params:,} = {analysis.trainable_params:,} trainable + "
            f"{analysis.non_trainable:,} non-trainable\n{PARAMETERS_TIP}")
        self.macs_label.setText(f"MACs {compact(analysis.macs)}")
        self.macs_label.setToolTip(f"{analysis.macs:,} multiply-accumulates per image")
        self.memory_label.setText(f"Training memory {format_bytes(memory.total)} (batch {batch})")
        self.memory_label.setToolTip(memory_breakdown(memory, optimizer))
        errors, warnings = len(analysis.errors), len(analysis.warnings)
        if errors:
            text, colour = f"✖ {errors} error{'s' * (errors != 1)}", theme.current().error.name()
        else:
            text, colour = "✔ valid network", valid_colour()
            if warnings:
                text += f", {warnings} warning{'s' * (warnings != 1)}"
        self.validity_label.setText(text)
        self.validity_label.setStyleSheet(f"color: {colour}; font-weight: bold;")
        self._set_problem_count(errors, warnings)
        if "fix_all" in self.actions:
            self.actions["fix_all"].setEnabled(repairable_count(self.document) > 0)

    def _set_problem_count(self, errors: int, warnings: int) -> None:
        count = errors + warnings
        index = self.bottom_tabs.indexOf(self.problems)
        self.bottom_tabs.setTabText(index, f"Problems ({count})" if count else "Problems")

    def _schedule_refresh(self, *_args: object) -> None:
        self._refresh_timer.start()  # many events of one edit: one refresh

    # -- actions and menus -------------------------------------------------------------------

    def _action(self, menu: QMenu, key: str, text: str, slot: Callable[[], object],
                shortcuts: Sequence[QKeySequence | str | QKeySequence.StandardKey] = (),
                tip: str = "") -> QAction:
        action = QAction(text, self)
        action.setShortcuts([QKeySequence(s) for s in shortcuts])
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(lambda _checked=False: slot())
        self._add(menu, key, action)
        return action

    def _add(self, menu: QMenu, key: str, action: QAction, window_wide: bool = True) -> None:
        menu.addAction(action)
        if window_wide:
            self.addAction(action)  # shortcuts work even while the menu bar is hidden
        self.actions[key] = action
        self.menu_actions.setdefault(menu.title().replace("&", ""), []).append(action)

    def _canvas_action(self, menu: QMenu, key: str, text: str) -> None:
        """The canvas's own action in a menu: its shortcuts work while the canvas has focus
        (a second action with the same keys would make them ambiguous there)."""
        action = self.canvas.canvas_actions()[key]
        action.setText(text)
        self._add(menu, key, action, window_wide=False)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self._action(file, "new", "&New…", self.new_file, [QKeySequence.StandardKey.New],
                     "Start a new network from a template")
        self._action(file, "open", "&Open…", self.open_dialog, [QKeySequence.StandardKey.Open])
        self.recent_menu = file.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self._fill_recent_menu()
        self.importer = ImportFlow(self)
        self.importer.actions = [
            self._action(file, "import_onnx", "&Import…", self.importer.import_onnx,
                         ["Ctrl+I"], "Open an ONNX model as a new project with its weights"),
            self._action(file, "import_torchvision", "Import &torchvision Model…",
                         self.importer.import_torchvision, ["Ctrl+Shift+I"],
                         tip="Import a torchvision classification model, e.g. resnet18")]
        file.addSeparator()
        self._action(file, "save", "&Save", self.save, [QKeySequence.StandardKey.Save])
        self._action(file, "save_as", "Save &As…", self.save_as, ["Ctrl+Shift+S"])
        file.addSeparator()
        self._action(file, "export_png", "Export Diagram as &PNG…",
                     lambda: self.export_diagram(".png"), ["Ctrl+Shift+E"])
        self._action(file, "export_svg", "Export Diagram as S&VG…",
                     lambda: self.export_diagram(".svg"), ["Ctrl+Alt+E"])
        from cnnstudio.ui.training.export_dialog import open_export_dialog

        self._action(file, "export_model", "Export Trained &Model…",
                     lambda: open_export_dialog(self), ["Ctrl+Shift+M"],
                     tip="Save the latest run as ONNX, TorchScript, a state dict or Python code")
        file.addSeparator()
        self._action(file, "quit", "&Quit", self.close, ["Ctrl+Q"])

        edit = bar.addMenu("&Edit")
        undo = self.document.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcuts([QKeySequence(QKeySequence.StandardKey.Undo)])
        self._add(edit, "undo", undo)
        redo = self.document.undo_stack.createRedoAction(self, "&Redo")
        redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self._add(edit, "redo", redo)
        edit.addSeparator()
        for key, text in (("cut", "Cu&t"), ("copy", "&Copy"), ("paste", "&Paste"),
                          ("duplicate", "D&uplicate"), ("delete", "&Delete"), (None, ""),
                          ("select_all", "Select &All"), ("rename", "Re&name…"),
                          ("collapse", "Colla&pse/Expand"), (None, ""),
                          ("make_module", "&Make Module…"),
                          ("dissolve_module", "Dissolve Modul&e")):
            if key is None:
                edit.addSeparator()
            else:
                self._canvas_action(edit, key, text)
        self._action(edit, "find", "&Find Block…", self.find_block,
                     [QKeySequence.StandardKey.Find], "Find a block of the network by name or type")
        self._canvas_action(edit, "find_next", "Find &Next")
        self._canvas_action(edit, "find_previous", "Find Pre&vious")
        self._action(edit, "search_palette", "Search the Block Pa&lette", self.palette.focus_search,
                     ["Ctrl+K"], "Search the palette for a block type to add")
        edit.addSeparator()
        self._action(edit, "fix_all", "Fi&x All Problems", self.fix_all_problems,
                     ["Ctrl+Shift+R"], "Apply every one-click fix, as one undo step")

        view = bar.addMenu("&View")
        for key, text in (("zoom_in", "Zoom &In"), ("zoom_out", "Zoom &Out"), ("fit_all", "&Fit"),
                          ("reset_zoom", "&Actual Size"), ("auto_layout", "Auto &Layout"),
                          ("auto_layout_right", "Auto Layout Left to &Right")):
            self._canvas_action(view, key, text)
        view.addSeparator()
        health = self._action(view, "training_health", "Training &Health on the Canvas",
                              self.toggle_training_health, ["Ctrl+Shift+H"],
                              "Tint each block by its gradients in the last epoch")
        health.setCheckable(True)
        self.training_page.health_changed.connect(self.show_training_health)
        view.addSeparator()
        theme_menu = view.addMenu("&Theme")
        self.theme_group = QActionGroup(self)
        current = self.settings.theme()
        for number, (name, label) in enumerate((("system", "&System"), ("light", "&Light"),
                                                ("dark", "&Dark")), start=1):
            action = self._action(theme_menu, f"theme_{name}", label,
                                  lambda name=name: self.set_theme(name),
                                  [f"Ctrl+Shift+{number}"])
            action.setCheckable(True)
            action.setChecked(name == current)
            self.theme_group.addAction(action)
        view.addSeparator()
        for number, dock in enumerate((self.palette_dock, self.inspector_dock,
                                       self.bottom_dock), start=1):
            toggle = dock.toggleViewAction()
            toggle.setShortcut(QKeySequence(f"Ctrl+{number}"))
            self._add(view, f"dock_{dock.objectName()}", toggle)

        training = bar.addMenu("&Training")
        for key, action, shortcut in self.training_page.menu_actions():
            action.setShortcut(QKeySequence(shortcut))
            self._add(training, key, action)

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "shortcuts", "&Keyboard Shortcuts", self.show_shortcuts, ["F1"])
        self._action(help_menu, "about", f"&About {APP_NAME}", self.show_about, ["Ctrl+F1"])

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.recent_files()[:MAX_RECENT]
        for number, path in enumerate(recent, start=1):
            action = self.recent_menu.addAction(f"&{number % 10} {path.name}  —  {path.parent}")
            action.setData(str(path))
            action.triggered.connect(lambda _checked=False, p=path: self.open_recent(p))
        if recent:
            self.recent_menu.addSeparator()
        clear = self.recent_menu.addAction("Clear Recent Files")
        clear.setEnabled(bool(recent))
        clear.triggered.connect(self._clear_recent)

    def _clear_recent(self) -> None:
        self.settings.clear_recent()
        self._fill_recent_menu()

    # -- wiring ------------------------------------------------------------------------------

    def _wire(self) -> None:
        doc = self.document
        doc.analysis_changed.connect(self._schedule_refresh)
        doc.graph_event.connect(self._schedule_refresh)
        doc.settings_changed.connect(self._schedule_refresh)  # batch size, optimiser: memory
        doc.dirty_changed.connect(lambda _dirty: self._update_title())
        doc.path_changed.connect(lambda _path: self._update_title())
        doc.project_replaced.connect(self._on_project_replaced)
        self.canvas.selection_changed.connect(self.inspector.show_blocks)
        self.canvas.status_message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.canvas.block_activated.connect(self._on_block_activated)
        self.summary.block_activated.connect(self._select_block)
        self.problems.block_activated.connect(self._select_block)
        self.problems.count_changed.connect(self._set_problem_count)
        for fixer in (self.problems, self.inspector):
            fixer.status_message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.palette.block_requested.connect(self.add_block)
        self.palette.module_requested.connect(
            lambda definition: self.canvas.modules.insert(definition, self.free_spot()))
        self.training_page.open_project_requested.connect(self.open_file)
        self.lab_page.block_added.connect(self._show_added_block)
        self.lab_page.status_message.connect(lambda text: self.statusBar().showMessage(text, 8000))

    def _select_block(self, block_id: str) -> None:
        self.canvas.select_blocks([block_id])

    def find_block(self) -> None:
        """Edit → Find Block…: the find bar over the network page's canvas."""
        self.show_page("network")
        self.canvas.find_bar.open_bar()

    def fix_all_problems(self) -> None:
        self.statusBar().showMessage(apply_all_repairs(self.document), 8000)

    def open_in_lab(self, network: object, block_id: str) -> None:
        """The training page's "Open in lab": the lab on a trained network's Conv2D block."""
        self.lab_page.open_trained(network, block_id)
        self.show_page("lab")

    def _show_added_block(self, block_id: str) -> None:
        """A block added from another page (the lab's first layer): show it, selected."""
        self.show_page("network")
        self.canvas.select_blocks([block_id])

    def _on_block_activated(self, _block_id: str) -> None:
        self.inspector_dock.show()
        self.inspector_dock.raise_()

    def _on_project_replaced(self) -> None:
        self.inspector.show_blocks([])
        self.banner.project_replaced()  # recovered changes of the previous project: gone
        self._update_title()
        self._refresh_status()

    def _update_title(self) -> None:
        self.setWindowTitle(f"{self.document.title}[*] — {APP_NAME}")
        self.setWindowModified(self.document.is_dirty)

    def free_spot(self) -> QPointF:
        """Where a block from the palette goes: below the last block, clear of the others."""
        blocks = self.document.graph.blocks
        if not blocks:
            return QPointF(0.0, 0.0)
        last = blocks[-1]
        x, y = last.x, last.y + STEP_Y
        while any(abs(b.x - x) < BLOCK_W and abs(b.y - y) < STEP_Y * 0.8 for b in blocks):
            y += STEP_Y
        return QPointF(x, y)

    def add_block(self, type_id: str, params: dict) -> None:
        self.canvas.add_block_at(type_id, params, self.free_spot())

    def show_training_health(self) -> None:
        """Tint the canvas blocks by the last epoch's gradient norms while the View menu's
        Training Health is on (see ui/training/health.py)."""
        from cnnstudio.ui.training.health import health_marks

        norms, epoch = self.training_page.health
        on = self.actions["training_health"].isChecked()
        self.canvas.scene().set_health(health_marks(norms, epoch) if on else None)

    def toggle_training_health(self) -> None:
        self.show_training_health()
        norms, epoch = self.training_page.health
        if self.actions["training_health"].isChecked():
            self.statusBar().showMessage(
                f"Gradients in epoch {epoch}: green typical, blue far smaller, red far larger; "
                "hover a block"
                if norms else "Training health shows once a run has finished its first epoch",
                10_000)

    # -- questions (tests replace these) -----------------------------------------------------

    def ask_save_changes(self) -> Button:
        box = QMessageBox(QMessageBox.Icon.Warning, APP_NAME,
                          f"Save the changes to “{self.document.title}”?",
                          Button.Save | Button.Discard | Button.Cancel, self)
        box.setInformativeText("Your changes are lost if you don't save them.")
        box.setDefaultButton(Button.Save)
        return Button(box.exec())

    def ask_open_path(self) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self, "Open project", self._start_folder(),
                                              PROJECT_FILTER)
        return path or None

    def ask_save_path(self) -> str | None:
        suggested = self.document.path or Path(self._start_folder()) / (
            self.document.project.name.replace("/", "-") + EXTENSION)
        path, _ = QFileDialog.getSaveFileName(self, "Save project as", str(suggested),
                                              PROJECT_FILTER)
        if path and not Path(path).suffix:
            path += EXTENSION
        return path or None

    def ask_export_path(self, suffix: str) -> str | None:
        stem = self.document.path.stem if self.document.path else self.document.project.name
        suggested = Path(self._start_folder()) / f"{stem}{suffix}"
        kind = "PNG image" if suffix == ".png" else "SVG drawing"
        path, _ = QFileDialog.getSaveFileName(self, "Export diagram", str(suggested),
                                              f"{kind} (*{suffix})")
        if path and Path(path).suffix.lower() != suffix:
            path += suffix
        return path or None

    def ask_new_project(self) -> Project | None:
        return StartPage.choose(self, self.document.project.template or DEFAULT_TEMPLATE)

    def show_error(self, summary: str, problems: Sequence[str] = (), title: str = APP_NAME) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, title, summary, Button.Ok, self)
        listed = [p for p in problems if p not in summary]
        if listed:
            shown = "\n".join(f"• {p}" for p in listed[:5])
            if len(listed) > 5:
                shown += f"\n… and {len(listed) - 5} more (see the details)"
            box.setInformativeText(shown)
            box.setDetailedText("\n".join(listed))
            grid = box.layout()
            if isinstance(grid, QGridLayout):  # widen the box so located problems stay on a line
                grid.addItem(QSpacerItem(520, 0, QSizePolicy.Policy.Minimum),
                             grid.rowCount(), 0, 1, grid.columnCount())
        box.exec()

    def _start_folder(self) -> str:
        if self.document.path is not None:
            return str(self.document.path.parent)
        recent = self.settings.recent_files()
        return str(recent[0].parent) if recent else str(Path.home())

    # -- file commands -----------------------------------------------------------------------

    def confirm_discard(self) -> bool:
        """True when the current project may be replaced or closed (saved, or the user agreed)."""
        if not self.document.is_dirty:
            return True
        answer = self.ask_save_changes()
        if answer == Button.Save:
            return self.save()
        return answer == Button.Discard

    def new_file(self) -> bool:
        project = self.ask_new_project()
        if project is None or not self.confirm_discard():
            return False
        self.document.set_project(project)
        self.statusBar().showMessage(f"New network: {project.name}", 5000)
        return True

    def open_dialog(self) -> bool:
        path = self.ask_open_path()
        return self.open_file(path) if path else False

    def open_file(self, path: str | Path) -> bool:
        """Open a project file; on any problem the current project stays as it is."""
        path = Path(path)
        try:
            project = load_project(path)
        except ProjectError as err:
            self.show_error(err.summary, err.problems, "Cannot open the project")
            return False
        if not self.confirm_discard():
            return False
        self.show_project(project, path, f"Opened {path}")
        return True

    def show_project(self, project: Project, path: Path, message: str) -> None:
        """Make a project loaded from `path` the document (Open, Import), once the user has
        agreed to replace the current one."""
        self.document.set_project(project, path.resolve())
        self.settings.add_recent(path)
        self.statusBar().showMessage(message, 8000)
        self._show_load_notes(project)

    def _show_load_notes(self, project: Project) -> None:
        """Say which parameters the opened file lacked and which defaults stand in for them."""
        if project.load_notes:
            self.banner.show_message("Parameters missing from the file were filled in with "
                                     "their defaults: " + "; ".join(project.load_notes),
                                     about_project=True)

    def open_recent(self, path: Path) -> bool:
        if not path.is_file():
            self.settings.remove_recent(path)
            self._fill_recent_menu()
            self.banner.show_message(f"“{path.name}” is no longer in {path.parent}; it was "
                                     "removed from Open Recent.")
            return False
        return self.open_file(path)

    def save(self) -> bool:
        if self.document.path is None:
            return self.save_as()
        return self.save_to(self.document.path)

    def save_as(self) -> bool:
        path = self.ask_save_path()
        return self.save_to(Path(path)) if path else False

    def save_to(self, path: Path) -> bool:
        """Write atomically; on failure the project stays open and marked unsaved."""
        try:
            save_project(self.document.file_project(Path(path)), path)
        except ProjectError as err:
            self.show_error(err.summary, err.problems, "Cannot save the project")
            return False
        self.document.mark_saved(Path(path).resolve())
        self.settings.add_recent(path)
        self.statusBar().showMessage(f"Saved {path}", 5000)
        return True

    def export_diagram(self, suffix: str) -> bool:
        path = self.ask_export_path(suffix)
        if not path:
            return False
        error = replace_refusal(path) or ""  # writing into a pipe would hang the window
        if not error:
            try:
                self.canvas.export_image(path)
            except (OSError, ValueError, RuntimeError) as err:
                error = str(err) or type(err).__name__
        if not error and (not Path(path).is_file() or Path(path).stat().st_size == 0):
            error = "nothing was written; check the folder and its permissions"
        if error:
            self.show_error(f"Cannot export the diagram to '{path}'", [error], "Export failed")
            return False
        self.statusBar().showMessage(f"Exported the diagram to {path}", 5000)
        return True

    # -- recovery ----------------------------------------------------------------------------

    def _offer_recovery(self, adopt: bool) -> None:
        pending = pending_recoveries(self.settings.directory)
        if not pending:
            return
        entry = pending[0]
        if adopt:
            self._adopt_recovery(entry, len(pending) - 1)
            return
        self.banner.show_message(
            f"Unsaved work from a session that ended unexpectedly was found: "
            f"{entry.description}.",
            [("Open It", lambda: self.confirm_discard() and self._adopt_recovery(entry, 0)),
             ("Discard It", entry.discard)])

    def _adopt_recovery(self, entry: RecoveryEntry, remaining: int) -> None:
        try:
            project = entry.load()
        except ProjectError as err:
            entry.discard()
            self.banner.show_message(f"Unsaved work from an earlier session could not be "
                                     f"recovered: {err.summary}")
            return
        self.document.set_project(project, entry.original_path, dirty=True)
        entry.discard()
        more = f" {remaining} more will be offered at the next start." if remaining else ""
        self.banner.show_message(
            f"Recovered the unsaved changes of {entry.description} from a session that ended "
            f"unexpectedly. Save to keep them.{more}", [("Save…", self.save)],
            about_project=True)
        self.statusBar().showMessage("Recovered unsaved changes from the last session", 15_000)

    # -- view --------------------------------------------------------------------------------

    def check_theme(self, name: str) -> None:
        """Tick the theme in the View menu without applying or remembering it."""
        self.actions[f"theme_{name}"].setChecked(True)

    def set_theme(self, name: str) -> None:
        app = QApplication.instance()
        if isinstance(app, QApplication):
            theme.apply(app, name)
        self.settings.set_theme(name)
        self.actions[f"theme_{name}"].setChecked(True)
        self.canvas.refresh_theme()
        self.banner.refresh_theme()
        self._refresh_status()

    def show_shortcuts(self) -> None:
        dialog = QDialog(self)
        dialog.setWindowTitle(f"Keyboard Shortcuts — {APP_NAME}")
        tree = QTreeWidget()
        tree.setHeaderLabels(["Command", "Shortcut"])
        tree.setRootIsDecorated(False)
        bold = QFont(tree.font())
        bold.setBold(True)
        for menu, actions in self.menu_actions.items():
            QTreeWidgetItem(tree, [menu, ""]).setFont(0, bold)
            for action in actions:
                keys = ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText)
                                 for s in action.shortcuts() if not _media_key(s))
                QTreeWidgetItem(tree, ["    " + action.text().replace("&", ""), keys])
        tree.setColumnWidth(0, tree.sizeHintForColumn(0) + 24)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dialog.reject)
        layout = QVBoxLayout(dialog)
        layout.addWidget(tree)
        layout.addWidget(buttons)
        dialog.resize(520, 620)
        dialog.exec()
        dialog.deleteLater()

    def show_about(self) -> None:
        QMessageBox.about(
            self, f"About {APP_NAME}",
            f"<h3>{APP_NAME} {__version__}</h3><p>Design convolutional neural networks by "
            "stacking blocks; see every block's output shape, parameters, multiply-accumulates "
            "and receptive field as you edit.</p><p>PyTorch, PySide6 and pyqtgraph. MIT.</p>")

    # -- closing -----------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        training = self.training_page
        if training.session.running and not training.ask_stop_training():
            event.ignore()
            return
        if not self.confirm_discard():
            event.ignore()
            return
        training.stop_and_wait()  # the run folder keeps the last checkpoint
        if self.remember_layout:
            self.settings.set_window(self.saveGeometry(), self.saveState())
        self.autosaver.stop()
        event.accept()
