"""The course website: the builder's pieces (fast), then the built site in a real browser.

The browser part builds the site in FAST mode (``build_book(fast=True)``, executed notebooks
cached under ``build/book-test/``; ``GRPO_EDU_SITE_DIR=build/book`` tests an existing build,
e.g. the full-mode one, instead), serves it on 127.0.0.1 and opens every page in Debian's
Chromium through playwright. It fails on a broken internal link or anchor, an image that does
not load, a math block that MathJax did not render, a console error, a failed request, or any
request that leaves the machine (those are aborted and recorded). Screenshots of the home page
and of a chapter go to ``test-artifacts/site/``. Needs what ``tests/test_browser.py`` needs
(``.ci/browser_deps.sh``) and the ``[book]`` extra; without them it skips, except under ``CI``.
"""

from __future__ import annotations

import base64
import functools
import http.server
import math
import os
import re
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest

from grpo_edu.book import GALLERY, explorer_gallery, render_widget_outputs
from grpo_edu.book.explorers import EXPLORERS, WIDGET_STATE, WIDGET_VIEW, explorer_call
from grpo_edu.book.sources import home_page, local_badge
from grpo_edu.course import colab_url

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "site"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
SCREENSHOT_CHAPTER = "notebooks/05_clipping_and_kl.html"


# ------------------------------------------------------------------------ builder pieces
def test_every_explorer_has_a_gallery_of_real_controls():
    assert set(GALLERY) == set(EXPLORERS) and EXPLORERS  # a new explorer needs its gallery
    for name in EXPLORERS:
        html = explorer_gallery(name)
        images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
        assert len(images) == 1 + len(GALLERY[name]), name  # default + one per setting
        assert all(base64.b64decode(i)[:4] == b"\x89PNG" for i in images)
        assert len(set(images)) == len(images), f"{name}: two settings drew the same figure"


def test_gallery_captions_say_what_the_library_computes():
    """The captions are claims about figures: check each number or direction they state."""
    from grpo_edu.advantages import group_advantages
    from grpo_edu.explain import (
        answer_push,
        clip_curves,
        kl_estimates,
        prob_all_equal,
        token_weights,
    )

    torch = pytest.importorskip("torch")

    def zero_grad_region(advantage=1.0, clip_eps=0.2, clip_eps_high=0.2):
        c = clip_curves(advantage, clip_eps, clip_eps_high)
        zero = c.grad == 0
        return c.ratio[zero].min().item(), c.ratio[zero].max().item(), c.ratio[~zero]

    lo, hi, moving = zero_grad_region(advantage=-1.0)  # "the clip acts below 1 - eps"
    assert hi <= 0.8 + 1e-9 and moving.max() == 2.0  # a ratio that rose is never clipped
    lo, _, moving = zero_grad_region(clip_eps_high=0.28)  # "may grow to 1.28"
    assert abs(lo - 1.28) < 0.01 and moving.min() < 0.5
    lo, _, moving = zero_grad_region(clip_eps=0.05, clip_eps_high=0.05)  # "passes 1.05"
    assert abs(lo - 1.05) < 0.01 and moving.min() < 0.5
    from grpo_edu.explain.coefficients import answer_weights, group_coefficients

    def weights(**kw):
        return answer_weights(group_coefficients(**{"rewards": (1, 0, 0, 1, 0, 0, 0, 1)} | kw))

    rare = weights(rewards=(1.0,) + (0.0,) * 7)
    assert rare["rft"][0] == 1 and all(2.3 < rare[m][0] < 2.7 for m in ("grpo", "ppo"))
    assert all((w == 0).all() for m, w in weights(rewards=(0.0,) * 8).items() if m != "sft")
    still, moved = weights(), weights(drift=1.5)
    assert moved["dpo"][0] < still["dpo"][0] and moved["grpo"][1] > still["grpo"][1] > -1
    adv = group_advantages(torch.tensor([1.0, 0.0]), 2)
    assert torch.allclose(adv.abs(), torch.full((2,), 0.707), atol=1e-3)  # "+-0.71"
    assert prob_all_equal(0.05, 8) > 0.5 > 0.2 > prob_all_equal(0.05, 32)  # "most", "far fewer"
    near, far, one = kl_estimates(shift=0.3), kl_estimates(shift=3.0), kl_estimates(n_samples=1)
    assert (near.estimates["k1"] < 0).float().mean() > 0.2  # "often negative"
    assert near.estimates["k3"].std() < near.estimates["k1"].std() / 5  # "tightly centred"
    assert (one.estimates["k1"] < 0).any() and (one.estimates["k3"] >= 0).all()
    assert far.estimates["k2"].mean() > far.exact + 0.5  # k2 biased, to the right
    for k in ("k1", "k3"):
        assert abs(far.estimates[k].mean() - far.exact) < 0.05  # centred
    assert far.estimates["k3"].std() > far.estimates["k1"].std()  # "k3 now spreads more"
    push = {m: answer_push((2, 24), (1.0, -1.0), m) for m in ("grpo", "bnpo", "dapo")}
    assert math.isclose(push["grpo"][0], -push["grpo"][1], rel_tol=1e-6)  # same total push
    for mode in ("bnpo", "dapo"):
        assert math.isclose(-push[mode][1] / push[mode][0], 12, rel_tol=1e-6)  # 12x harder
    for mode in ("grpo", "bnpo", "dapo"):
        w = token_weights((8, 8), mode)
        assert torch.allclose(w, torch.full_like(w, 1 / 16))
    w = token_weights((8, 8), "dr_grpo", max_completion_length=32)
    assert torch.allclose(w, torch.full_like(w, 1 / (2 * 32)))


def test_explorer_call_reads_the_cell():
    assert explorer_call("widgets.clip_explorer()") == ("clip_explorer", [], {})
    assert explorer_call("x = 1\nclip_explorer(0.5, clip_eps=0.1)") == (
        "clip_explorer", [0.5], {"clip_eps": 0.1}
    )  # fmt: skip
    assert explorer_call("widgets.clip_explorer(a)") is None  # not a literal: no static copy
    assert explorer_call("e = widgets.clip_explorer()") is None
    assert explorer_call("print(1)") is None


def test_widget_outputs_become_static():
    nb = nbformat.v4.new_notebook()
    view = lambda model_id: {"output_type": "display_data", "metadata": {},  # noqa: E731
                             "data": {WIDGET_VIEW: {"model_id": model_id}, "text/plain": "W"}}  # fmt: skip
    nb.cells = [nbformat.v4.new_code_cell("widgets.kl_explorer(shift=2.0)", outputs=[view("a")]),
                nbformat.v4.new_code_cell("train()", outputs=[view("bar")]),
                nbformat.v4.new_code_cell("mystery()", outputs=[view("m")])]  # fmt: skip
    state = {
        "bar": {"model_name": "HBoxModel",
                "state": {"children": ["IPY_MODEL_l", "IPY_MODEL_p", "IPY_MODEL_r"]}},
        "l": {"model_name": "HTMLModel", "state": {"value": "grpo: 100%"}},
        "p": {"model_name": "FloatProgressModel", "state": {"value": 20, "max": 20}},
        "r": {"model_name": "HTMLModel", "state": {"value": "20/20 [00:05&lt;00:00]"}},
    }  # fmt: skip
    nb.metadata["widgets"] = {WIDGET_STATE: {"state": state}}
    done = render_widget_outputs(nb)
    assert done.explorers == ["kl_explorer"] and done.progress_bars == 1 and done.unknown == [2]
    html = nb.cells[0].outputs[0]["data"]["text/html"]
    assert 'data-explorer="kl_explorer"' in html and "shift = 0.3" in html
    assert nb.cells[1].outputs[0]["data"] == {"text/plain": "grpo: 100% 20/20 [00:05<00:00]"}
    assert nb.cells[2].outputs[0]["data"] == {"text/plain": "W"}
    assert "widgets" not in nb.metadata


def test_home_page_links_the_course_table_and_orders_the_pages():
    readme = "# t\n\n| notebook | what |\n|---|---|\n| `00_quickstart` | a |\n| `99_gone` | b |\n"
    page = home_page(readme, ["notebooks/00_quickstart"], ["notebooks/exercises/student/01_x"])
    assert "| [`00_quickstart`](notebooks/00_quickstart.ipynb) |" in page
    assert "| `99_gone` |" in page  # no such chapter: left as text, not a broken link
    assert page.index(":caption: Course") < page.index("notebooks/00_quickstart\n```")
    assert "notebooks/exercises/student/01_x" in page


def test_badge_image_is_local_and_link_unchanged():
    nb = nbformat.v4.new_notebook()
    badge = ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
             f"({colab_url('notebooks/00_quickstart.ipynb')})")  # fmt: skip
    nb.cells = [nbformat.v4.new_markdown_cell(badge)]
    local_badge(nb)
    assert (
        nb.cells[0].source
        == f"[![Open In Colab](colab-badge.svg)]({colab_url('notebooks/00_quickstart.ipynb')})"
    )


# -------------------------------------------------------------------------- learning path
LINK = re.compile(r"\]\(([^)\s]+\.ipynb)(#[\w-]+)?\)")


def markdown_links(path: Path) -> list[tuple[int, Path, str]]:
    """(cell index, resolved target, anchor) of every relative .ipynb link in the markdown."""
    nb = nbformat.read(path, as_version=4)
    return [(i, (path.parent / m[1]).resolve(), m[2] or "")
            for i, cell in enumerate(nb.cells) if cell.cell_type == "markdown"
            for m in LINK.finditer(cell.source) if "://" not in m[1]]  # fmt: skip


def test_learning_path_chapters_and_exercises_link_both_ways():
    """Each chapter links to its graded exercises right after its Key equations, each exercise
    (student version, what learners open) links back to the Key equations it practises."""
    chapters = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    exercises = sorted((ROOT / "notebooks/exercises/student").glob("[0-9][0-9]_*.ipynb"))
    linked_from: dict[Path, set[Path]] = {e.resolve(): set() for e in exercises}
    for chapter in chapters:
        nb = nbformat.read(chapter, as_version=4)
        keys = [i for i, c in enumerate(nb.cells) if c.source.startswith("## Key equations")]
        for i, target, _ in markdown_links(chapter):
            assert target.exists(), f"{chapter.name}: link to missing {target}"
            if target in linked_from:
                assert keys and i in (keys[0], keys[0] + 1), f"{chapter.name}: cell {i}"
                linked_from[target].add(chapter.resolve())
    for exercise, chapters_in in linked_from.items():
        assert chapters_in, f"no chapter links to {exercise.name}"
        back = {t for _, t, anchor in markdown_links(exercise) if anchor == "#key-equations"}
        assert back and back <= chapters_in, f"{exercise.name}: links back to {back}"
        for target in back:
            assert target.exists(), f"{exercise.name}: link to missing {target}"


# ------------------------------------------------------------------------- the built site
@pytest.fixture(scope="module")
def site():
    """(html folder, build report or None): the FAST build, or ``GRPO_EDU_SITE_DIR``'s."""
    missing = []
    for module in ("sphinx", "myst_nb", "sphinx_book_theme"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        message = f"the site needs {missing}: pip install -e '.[book]'"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set: {message}")
        pytest.skip(message)
    given = os.environ.get("GRPO_EDU_SITE_DIR")
    if given:
        return Path(given) / "html", None
    from grpo_edu.book import build_book

    report = build_book(ROOT / "build" / "book-test", fast=True, progress=False, jobs=2)
    assert report.warnings == [], "\n".join(report.warnings)
    unknown = {name: r.unknown for name, r in report.rendered.items() if r.unknown}
    assert not unknown, f"widget outputs with no static rendering (notebook: cells): {unknown}"
    return report.index.parent, report


@pytest.fixture(scope="module")
def browser():
    """A headless Debian Chromium through playwright, or skip (fail under CI) without it."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing.append("the playwright Python package")
    if missing:
        message = f"site test needs {' and '.join(missing)}; run .ci/browser_deps.sh"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set: {message}")
        pytest.skip(message)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no request log on stderr
        pass


@pytest.fixture(scope="module")
def server(site):
    """The built site served on 127.0.0.1 (a free port), as a reader's browser would get it."""
    html, _ = site
    handler = functools.partial(Quiet, directory=str(html))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def pages(html: Path) -> list[str]:
    """Every page of the site, as paths relative to its root."""
    skip = ("_static", "_sources", "_images")
    return sorted(
        p.relative_to(html).as_posix()
        for p in html.rglob("*.html")
        if p.relative_to(html).parts[0] not in skip
    )


CHECK_PAGE = r"""async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  const images = [...document.images];
  for (const img of images) { img.loading = "eager"; }
  await Promise.all(images.map(img => img.decode().catch(() => null)));
  const prose = [...document.querySelectorAll("article p, article li, article td, article th")]
    .filter(e => !e.closest("pre, code, .cell_output"));
  const text = e => {  // prose without code and rendered math: TeX left here was not parsed
    const c = e.cloneNode(true);
    c.querySelectorAll("code, pre, mjx-container, .math").forEach(x => x.remove());
    return c.textContent;
  };
  return {
    broken_images: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 120)),
    math: document.querySelectorAll("article .math").length,
    unrendered_math: [...document.querySelectorAll("article .math")]
        .filter(e => !e.querySelector("mjx-container")).map(e => e.textContent.slice(0, 80)),
    math_errors: [...document.querySelectorAll("mjx-merror, [data-mjx-error]")]
        .map(e => (e.getAttribute("data-mjx-error") || e.textContent).slice(0, 80)),
    raw_tex: prose.map(text).filter(t => /\$|\\\(|\\\[|\\[A-Za-z]+/.test(t)).map(t => t.slice(0, 80)),
    links: [...document.querySelectorAll("a[href]")].map(a => a.href),
    explorers: document.querySelectorAll(".grpo-explorer").length,
    dead_widgets: document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length,
    colab: [...document.querySelectorAll("a[href*='colab.research.google.com/github']")].map(a => a.href),
  };
}"""


def ids_of(html_file: Path) -> set[str]:
    return set(re.findall(r'\bid="([^"]+)"', html_file.read_text(encoding="utf-8")))


def watch(page) -> list[str]:
    """Console errors, page errors, failed loopback requests and HTTP errors of ``page``."""
    errors: list[str] = []

    def console(message):
        if message.type == "error":
            errors.append(f"console error: {message.text}")

    def response(r):
        if r.status >= 400:
            errors.append(f"HTTP {r.status}: {r.url}")

    def failed(r):
        if urlsplit(r.url).hostname in LOOPBACK:  # outside requests: aborted, counted apart
            errors.append(f"request failed: {r.url}")

    page.on("console", console)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("response", response)
    page.on("requestfailed", failed)
    return errors


def link_errors(links: list[str], html: Path, ids: dict[Path, set[str]]) -> list[str]:
    """Internal links whose file, or whose #anchor in that file, does not exist."""
    errors = []
    for link in links:
        url = urlsplit(link)
        if url.hostname not in LOOPBACK or url.scheme not in ("http", "https"):
            continue  # external: never requested by the test (nor by a reader until clicked)
        target = html / unquote(url.path).lstrip("/")
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            errors.append(f"broken link: {link}")
        elif url.fragment and target.suffix == ".html":
            if url.fragment not in ids.setdefault(target, ids_of(target)):
                errors.append(f"broken anchor: {link}")
    return errors


def guarded_context(browser, outside: list[str]):
    """A browser context that aborts, and records in ``outside``, every non-loopback request."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})

    def route(r):
        host = urlsplit(r.request.url).hostname or ""
        if r.request.url.startswith(("data:", "blob:")) or host in LOOPBACK:
            return r.continue_()
        outside.append(r.request.url)
        return r.abort()

    context.route("**/*", route)
    return context


def check_page(context, server: str, html: Path, name: str, ids: dict) -> tuple[list, dict, object]:
    """Open ``name``; (its problems, what CHECK_PAGE found, the open page)."""
    page = context.new_page()
    errors = watch(page)
    page.goto(f"{server}/{name}", wait_until="load")
    found = page.evaluate(CHECK_PAGE)
    for key in ("broken_images", "unrendered_math", "math_errors", "raw_tex"):
        errors += [f"{key}: {x}" for x in found[key]]
    if found["dead_widgets"]:
        errors.append(f"{found['dead_widgets']} widget outputs without a static rendering")
    errors += link_errors(found["links"], html, ids)
    return errors, found, page


def test_every_page_in_a_real_browser(site, server, browser):
    html, report = site
    all_pages = pages(html)
    notebooks = [
        p for p in all_pages if re.fullmatch(r"notebooks/(exercises/student/)?\d\d_\w+\.html", p)
    ]
    assert "index.html" in all_pages and "search.html" in all_pages
    assert any("/exercises/" in p for p in notebooks) and SCREENSHOT_CHAPTER in notebooks
    outside, problems, explorers, math_blocks, ids = [], [], 0, 0, {}
    context = guarded_context(browser, outside)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name in all_pages:
        errors, found, page = check_page(context, server, html, name, ids)
        colab = colab_url(name.removesuffix(".html") + ".ipynb")
        if name in notebooks and colab not in found["colab"]:
            errors.append(f"no Colab link {colab} (found {found['colab']})")
        if name == "index.html":
            page.screenshot(path=str(ARTIFACTS / "home.png"))
        if name == SCREENSHOT_CHAPTER:
            page.screenshot(path=str(ARTIFACTS / "chapter_top.png"))
            explorer = page.locator(".grpo-explorer").first
            explorer.screenshot(path=str(ARTIFACTS / "chapter_explorer.png"))
        explorers += found["explorers"]
        math_blocks += found["math"]
        problems += [f"{name}: {e}" for e in errors]
        page.close()
    context.close()
    assert not outside, f"requests that would leave the machine: {sorted(set(outside))}"
    assert not problems, "\n".join(problems)
    assert math_blocks > 50  # the chapters' equations were found (and rendered: see above)
    if report is not None:
        assert explorers == sum(len(r.explorers) for r in report.rendered.values()) > 0


BROKEN_PAGE = """<!doctype html><html><body><article>
<p>raw $$x^2$$ left over</p><span class="math">\\(x\\)</span>
<img src="https://example.org/remote.png"><img src="missing.png">
<a href="nowhere.html">a</a><a href="page.html#no-such-id">b</a>
<script>console.error("boom")</script></article></body></html>"""


def test_the_page_checker_catches_what_it_claims(browser, tmp_path):
    """A page broken in every way the site test looks for: each is reported."""
    (tmp_path / "page.html").write_text(BROKEN_PAGE)
    handler = functools.partial(Quiet, directory=str(tmp_path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    outside: list[str] = []
    context = guarded_context(browser, outside)
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        errors, _, page = check_page(context, url, tmp_path, "page.html", {})
        page.close()
    finally:
        context.close()
        httpd.shutdown()
        httpd.server_close()
    assert outside == ["https://example.org/remote.png"]
    text = "\n".join(errors)
    for expected in ("console error: boom", "HTTP 404", "broken_images", "unrendered_math",
                     "raw_tex", "broken link", "broken anchor"):  # fmt: skip
        assert expected in text, f"{expected!r} not reported in:\n{text}"


def test_search_works_offline(site, server, browser):
    page = browser.new_page()
    page.goto(f"{server}/search.html?q=advantage", wait_until="load")
    page.wait_for_function(
        "document.querySelectorAll('#search-results li').length > 0", timeout=20_000
    )
    assert page.locator("#search-results li").count() > 3
    page.close()


def test_book_command_line():
    from grpo_edu.cli import build_parser

    args = build_parser().parse_args(["book", "--fast", "--jobs", "2", "--out", "x"])
    assert (args.fast, args.jobs, str(args.out), args.fresh) == (True, 2, "x", False)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["book", "--jobs", "0"])
