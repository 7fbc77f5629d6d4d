"""The canvas grid every placement uses (layout, templates, new and inserted blocks, Graph.chain):
rows STEP_Y apart, parallel branches STEP_X apart, positions snapped to GRID; and the size of a
block's card in scene units (BLOCK_W × BLOCK_H), which the layout makes room for.

Its own module, below both graph.py (Graph.chain's default step) and layout.py (which lays
graphs out), so that neither imports the other back.
"""

STEP_X = 220.0
STEP_Y = 110.0
GRID = 10.0
BLOCK_W = 190.0
BLOCK_H = 62.0
