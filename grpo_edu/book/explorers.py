"""Static renderings of the explorers, for pages read without a kernel.

A website shows an executed notebook's outputs, but an ipywidgets explorer is only a model id
there: nothing draws without a live kernel. ``render_widget_outputs`` replaces each widget
output of an executed notebook:

- an explorer (a cell whose last line calls ``widgets.<name>_explorer(...)`` with literal
  arguments) becomes its intro, its figure at the cell's setting, and a small gallery of other
  settings (``GALLERY``), each drawn by the explorer itself: controls set as a learner would set
  them, the PNG read from ``explorer.image``;
- a tqdm progress bar becomes the text of its last state (``100% 20/20 [00:05<00:00]``), read
  from the widget state that nbclient stored in the notebook;
- any other widget keeps its plain-text fallback, and its cell is named in the result.
"""

from __future__ import annotations

import ast
import base64
import html
from dataclasses import dataclass, field

from .. import widgets

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
EXPLORERS = tuple(name for name in widgets.__all__ if name.endswith("_explorer"))
"""The explorer functions of ``grpo_edu.widgets`` that the site renders statically."""

GALLERY: dict[str, list[tuple[str, dict]]] = {
    "group_advantage_explorer": [
        ("A rare success (1 of 8 right) gets a large advantage, each failure a small one.",
         {"preset": (1.0,) + (0.0,) * 7}),
        ("A rare failure (7 of 8 right): the same picture, mirrored.",
         {"preset": (0.0,) + (1.0,) * 7}),
        ("All wrong: every advantage is 0, the group adds no gradient.",
         {"preset": (0.0,) * 8}),
        ("G = 2, one right: the group std of (1, 0) is 0.71, so GRPO's advantages are +-0.71.",
         {"preset": (1.0, 0.0)}),
    ],
    "clip_explorer": [
        ("A < 0: the clip acts below 1 - eps; a bad token whose ratio rose is never clipped.",
         {"advantage": -1.0}),
        ("DAPO's clip-higher (eps_high = 0.28): a good token's ratio may grow to 1.28 before "
         "its gradient stops.", {"clip_eps_high": 0.28}),
        ("A narrow clip range (eps = 0.05): with A > 0 the gradient is 0 as soon as r passes 1.05.",
         {"clip_eps": 0.05, "clip_eps_high": 0.05}),
    ],
    "kl_explorer": [
        ("Near the reference (shift 0.3): k1's batch estimates are often negative and spread "
         "widely; k3 is never negative and tightly centred on the exact KL.", {"shift": 0.3}),
        ("One token per estimate: k1 is negative for many tokens, k2 and k3 never.",
         {"n_samples": 1}),
        ("Far from the reference (shift 3): k2 is biased (it sits right of the exact KL); k1 and "
         "k3 stay centred on it, and k3 now spreads more than k1.", {"shift": 3.0}),
    ],
    "group_size_explorer": [
        ("A hard prompt (p = 0.05) at G = 8: most groups are all wrong, no signal.", {"p": 0.05}),
        ("The same prompt with G = 32: far fewer groups without signal.",
         {"p": 0.05, "group_size": 32}),
        ("p = 0.5 at G = 4: the baseline's error sqrt(p (1 - p) / G) is largest at p = 0.5.",
         {"p": 0.5, "group_size": 4}),
    ],
    "coefficient_explorer": [
        ("One of 8 right: GRPO and PPO give the rare success a coefficient near 2.5; RFT still 1.",
         {"rewards": (1.0,) + (0.0,) * 7}),
        ("All wrong (pi = pi_ref): every method's coefficient is 0, nothing to learn here.",
         {"rewards": (0.0,) * 8}),
        ("The policy has moved (drift 1.5): DPO's weight shrinks as it separates the pair, and "
         "GRPO's KL term softens the push on the wrong answers.", {"drift": 1.5}),
    ],
    "aggregation_explorer": [
        ("Equal lengths: grpo, bnpo and dapo give every token the same weight, 1/16; dr_grpo a "
         "smaller constant, 1 / (B * 32).", {"length_1": 8, "length_2": 8}),
        ("A short right answer (L = 2) and a long wrong one (L = 24): under grpo both answers get "
         "the same total push; under bnpo and dapo the long one is pushed down 12x harder.",
         {"length_1": 2, "length_2": 24}),
    ],
}  # fmt: skip
"""Settings shown below each explorer's figure: (caption, {control name: value}), per explorer."""


@dataclass
class Rendered:
    """What ``render_widget_outputs`` did to one notebook."""

    explorers: list[str] = field(default_factory=list)
    """Explorer functions rendered statically, in order of appearance."""
    progress_bars: int = 0
    """tqdm bars replaced by their final text."""
    unknown: list[int] = field(default_factory=list)
    """Indices of cells with another widget (left as its plain-text fallback)."""


def explorer_call(source: str) -> tuple[str, list, dict] | None:
    """(name, args, kwargs) when the cell's last statement calls an explorer with literals."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return None
    if not body or not isinstance(body[-1], ast.Expr) or not isinstance(body[-1].value, ast.Call):
        return None
    call = body[-1].value
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name not in EXPLORERS:
        return None
    try:
        args = [ast.literal_eval(a) for a in call.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    except ValueError:
        return None
    return name, args, kwargs


def _png_tag(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def explorer_gallery(name: str, args: list | None = None, kwargs: dict | None = None) -> str:
    """HTML of one explorer without a kernel: intro, figure at the call's setting, gallery.

    Each gallery entry starts from the call's setting (a fresh explorer) and changes only the
    controls it names, as a learner moving those sliders would.
    """

    def make():
        return getattr(widgets, name)(*(args or []), **(kwargs or {}))

    explorer = make()
    intro = explorer.children[0].value  # the explorer's own explanation (an HTML widget)
    parts = [
        f'<div class="grpo-explorer" data-explorer="{name}">',
        f'<p class="grpo-explorer-intro">{intro}</p>',
        '<p class="grpo-explorer-note">Interactive in a live notebook (Colab or JupyterLab): '
        "here, its figure at this setting, then a few other settings.</p>",
        f"<figure>{_png_tag(explorer.image.value, name + ' at its default setting')}</figure>",
        '<div class="grpo-gallery">',
    ]
    explorer.close()
    for caption, values in GALLERY.get(name, []):
        explorer = make()
        with explorer.hold():
            for control, value in values.items():
                explorer.controls[control].value = value
        setting = ", ".join(f"{k} = {v}" for k, v in values.items() if k != "preset")
        label = html.escape(caption) + (f" <code>{html.escape(setting)}</code>" if setting else "")
        parts.append(
            f"<figure>{_png_tag(explorer.image.value, caption)}<figcaption>{label}</figcaption>"
            "</figure>"
        )
        explorer.close()
    parts += ["</div>", "</div>"]
    return "\n".join(parts)


def _progress_text(model_id: str, state: dict) -> str | None:
    """The last text of a tqdm bar (HBox of HTML, FloatProgress, HTML), or None."""
    box = state.get(model_id, {}).get("state", {})
    children = [c.removeprefix("IPY_MODEL_") for c in box.get("children", [])]
    kinds = [state.get(c, {}).get("model_name") for c in children]
    if kinds != ["HTMLModel", "FloatProgressModel", "HTMLModel"]:
        return None
    left, _, right = (state[c]["state"] for c in children)  # "desc: 100%", bar, "n/N [...]"
    text = f"{left.get('value', '')} {right.get('value', '')}"
    return html.unescape(text).replace("\xa0", " ").strip()


def render_widget_outputs(nb) -> Rendered:
    """Replace, in place, every widget output of an executed notebook (see the module doc)."""
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    done = Rendered()
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view is None:
                continue
            call = explorer_call(cell.source)
            text = _progress_text(view.get("model_id", ""), state)
            if call is not None:
                output["data"] = {"text/html": explorer_gallery(*call), "text/plain": call[0]}
                done.explorers.append(call[0])
            elif text is not None:
                output["data"] = {"text/plain": text}
                done.progress_bars += 1
            else:
                output["data"].pop(WIDGET_VIEW)
                done.unknown.append(index)
    nb.metadata.pop("widgets", None)  # no widget JavaScript is loaded: its state is unused
    return done
