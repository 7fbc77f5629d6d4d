"""The inspection views of the training page: feature maps, filters, the confusion matrix and
predictions on chosen images (`views.inspection_tabs` builds them as tabs).

Nothing is imported here, so the export dialog can use `common.BackgroundTask` without loading
the views.
"""
