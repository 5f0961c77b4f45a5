"""Look of the graph pictures, shared by the detailed view (:mod:`.draw`) and the summary
view (:mod:`.draw_summary`): canvas size and colours. Its own module so that ``draw`` can
import ``draw_summary`` one way, at module top level.
"""

from __future__ import annotations

__all__ = ["CANVAS", "EDGE_COLOURS", "NODE_COLOURS", "PLOT_WIDTH"]

#: Figure size in inches, for every graph (2080 x 1170 pixels at the default 130 dpi).
CANVAS = (16.0, 9.0)
#: Share of the canvas width the graph may use (the legend takes the rest).
PLOT_WIDTH = 0.84
#: Fill colour per node type (colour-blind-friendly Okabe-Ito palette).
NODE_COLOURS: dict[str, str] = {
    "teacher": "#E69F00",
    "student": "#CC79A7",
    "domain": "#56B4E9",
    "task": "#009E73",
    "label_set": "#F0E442",
    "label": "#D9D9D9",
    "dataset": "#999999",
}
#: Edge colour per relation; others are grey.
EDGE_COLOURS: dict[str, str] = {
    "trainedOn": "#D55E00",
    "predicts": "#E69F00",
    "similarTo": "#0072B2",
    "sharesGenre": "#009E73",
    "sameSource": "#CC79A7",
    "subDomainOf": "#000000",
    "sharesModality": "#56B4E9",
    "equivalentLabel": "#7F7F7F",
    "broaderLabel": "#7F7F7F",
}
