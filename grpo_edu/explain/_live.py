"""The drawing base of every explainer: a figure built once, redrawn in place, saved as PNG.

A fresh figure spends about half its time building axes and ticks; a widget that only swaps
the data artists of axes it built once redraws about twice as fast. ``LivePlot`` does that:
``setup`` builds the static parts once, ``plot`` adds the data artists of one set of
parameters, and ``draw`` removes the previous ones before calling ``plot``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..plots import DisplayFigure, render_png  # noqa: F401  (render_png: re-exported)

DPI = 90
"""Resolution of every explainer figure: sharp on screen, and few pixels to draw and encode."""
FONT = 8
"""Font size (points) of ticks, legends and notes; titles are one point larger."""


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread inside the block, then restore the thread count.

    An explainer's tensors are tiny: split over threads they wait on each other, which on a
    busy 2-core machine turns 0.3 ms into 30 ms. Setting the count costs ~0.3 ms.
    """
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


class LivePlot:
    """A ``Figure`` whose axes are built once; ``draw(**params)`` replaces only its data artists.

    Subclasses set ``figsize``, build axes and labels in ``setup`` and add the artists of one
    set of parameters in ``plot``, passing each to ``keep`` so the next ``draw`` removes it.
    Titles are placed with ``y=1.0`` (``title``), which skips matplotlib's costly automatic
    title placement.
    """

    figsize: tuple[float, float] = (9.0, 3.2)

    def __init__(self) -> None:
        self.fig = DisplayFigure(figsize=self.figsize, dpi=DPI)
        FigureCanvasAgg(self.fig)
        self._data: list[Artist] = []
        self.setup()

    def setup(self) -> None:
        """Build the axes and everything that does not depend on the parameters."""
        raise NotImplementedError

    def plot(self, **params) -> None:
        """Add the data artists for ``params`` (each through ``keep``)."""
        raise NotImplementedError

    def keep(self, artist):
        """Register an artist (or container) to be removed by the next ``draw``; returns it."""
        self._data.append(artist)
        return artist

    def draw(self, **params) -> Figure:
        """Redraw for ``params``: remove the previous data artists, add the new ones."""
        for artist in self._data:
            artist.remove()
        self._data = []
        with single_thread():
            self.plot(**params)
        return self.fig


def style(ax, grid: str = "both", nbins: int = 4) -> None:
    """Small tick labels, a light grid, at most ``nbins`` y intervals.

    Tick labels are most of a redraw's cost (each is laid out and drawn again every time), so
    the explainers keep few of them.
    """
    ax.tick_params(labelsize=FONT)
    ax.grid(axis=grid, alpha=0.3)
    ax.yaxis.set_major_locator(MaxNLocator(nbins, steps=[1, 2, 2.5, 5, 10]))


def bars(ax, x, heights, width: float, color: str) -> PolyCollection:
    """Bar chart as one ``PolyCollection`` (a tenth of ``ax.bar``'s cost for dozens of bars).

    ``x`` are the bar centres, ``heights`` signed heights from 0; the axes limits are left to
    the caller.
    """
    x, h, half = np.asarray(x, float), np.asarray(heights, float), width / 2
    verts = np.stack(
        [
            np.stack([x - half, np.zeros_like(h)], 1),
            np.stack([x - half, h], 1),
            np.stack([x + half, h], 1),
            np.stack([x + half, np.zeros_like(h)], 1),
        ],
        1,
    )  # (n_bars, 4 corners, xy)
    return ax.add_collection(PolyCollection(verts, facecolors=color, linewidths=0), autolim=False)


def title(ax, text: str, **kw):
    """``ax.set_title`` at a fixed height (fast) in the explainers' title size; the Text."""
    return ax.set_title(text, y=1.0, fontsize=FONT + 1, **kw)
