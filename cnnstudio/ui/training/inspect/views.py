"""The views that look inside a trained network, for the training page to embed as tabs.

    context = InspectionContext(session, document)     # follows the run, or context.load_run(dir)
    for title, widget in inspection_tabs(context):
        tabs.addTab(widget, title)

The views are in inspect.maps (feature maps, filters), inspect.confusion and inspect.predict;
the computations they show are cnnstudio.train.inspect, free of Qt.
"""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from cnnstudio.train.inspect import ImageFileError, InspectionError
from cnnstudio.ui.training.inspect.common import wait_for_background_work
from cnnstudio.ui.training.inspect.confusion import ConfusionView
from cnnstudio.ui.training.inspect.context import InspectionContext
from cnnstudio.ui.training.inspect.maps import FeatureMapView, FilterView
from cnnstudio.ui.training.inspect.predict import PredictView

TAB_TITLES = ("Feature maps", "Filters", "Confusion matrix", "Predict")


def inspection_tabs(context: InspectionContext,
                    parent: QWidget | None = None) -> list[tuple[str, QWidget]]:
    """(title, view) for each inspection tab, in the order the page shows them."""
    maps, confusion = FeatureMapView(context, parent), ConfusionView(context, parent)
    predict = PredictView(context, parent)
    confusion.sample_chosen.connect(maps.chooser.show_validation)  # a click on a mistake
    confusion.sample_chosen.connect(predict.chooser.show_validation)
    views: list[QWidget] = [maps, FilterView(context, parent), confusion, predict]
    return list(zip(TAB_TITLES, views, strict=True))


__all__ = [
    "TAB_TITLES",
    "ConfusionView",
    "FeatureMapView",
    "FilterView",
    "ImageFileError",
    "InspectionContext",
    "InspectionError",
    "PredictView",
    "inspection_tabs",
    "wait_for_background_work",
]
