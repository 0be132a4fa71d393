"""How notebook helpers talk: one line under the running cell, never ``print``.

``show(text)`` goes through IPython's ``display`` (IPython comes with ipywidgets); outside IPython,
``display`` falls back to printing. Library code returns values; only the command line prints.
"""

from __future__ import annotations


class Line:
    """Text that IPython shows as it is (a ``str`` would be shown in quotes)."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def show(text: str) -> None:
    """Put ``text`` under the running cell."""
    from IPython.display import display

    display(Line(text))
