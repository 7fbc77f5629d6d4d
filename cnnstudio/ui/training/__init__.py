"""Training in the window: the background session, the training page and its live views."""
