"""A real browser: JupyterLab headless, a widget notebook opened in Debian's Chromium through
playwright, Run > Run All Cells, a slider moved, and the rendered plot must change.

Needs ``/usr/bin/chromium`` and the ``playwright`` Python package (``.ci/browser_deps.sh``
installs both; never ``playwright install``: the system Chromium is used). Without them the
tests skip, except under ``CI`` where they fail.

Nothing leaves the machine: JupyterLab listens on 127.0.0.1 with news, update checks and the
PyPI extension manager off; the browser is launched with background networking off, and every
request it makes to a host other than 127.0.0.1 is aborted and recorded (the notebooks' Colab
badge image is the only one expected).

Screenshots (whole page and the widget, before and after), the widget's PNGs, the browser
console and the JupyterLab log go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import base64
import ctypes
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
COURSE_TARGETS = ("notebooks/05_clipping_and_kl.ipynb", "notebooks/02_policy_gradients.ipynb")
"""The course notebook to drive: the first of these that exists."""
PREFERRED_EXPLORER = "The clipped surrogate"
"""Intro text of the explorer to move when the notebook shows several (clip_explorer)."""
SENTINEL = "grpo-edu-browser-test: every cell ran"
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
EXPECTED_OUTSIDE = ("https://colab.research.google.com/assets/colab-badge.svg",)
"""Outside requests the pages are expected to attempt (aborted anyway): the Colab badge."""
WIDGET_ERROR = re.compile(
    r"widget|jupyter-widgets|ipywidgets|model not found|Class \S+ not found|comm", re.I
)
LAB_SETTINGS = {
    # every cell attached to the DOM, so the widget is found wherever it is in the notebook
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/extensionmanager-extension/plugin": {"enabled": False},
}
KERNEL_IDLE = re.compile(r"^(?!No Kernel).+ \| Idle$")
TRACEBACK = re.compile(
    r"Traceback \(most recent call last\)|^(\w+\.)*\w*(Error|Exception)\b: ", re.M
)
"""An exception in a cell's output (IPython's traceback, or the last line of a SyntaxError)."""
START_TIMEOUT_S = 60
RUN_TIMEOUT_S = {"course": 240, "minimal": 60}
"""Hang guards: the course notebook takes about its FAST nbmake time (<= ~60 s idle)."""
REDRAW_TIMEOUT_S = 20


# ------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def sync_playwright():
    """playwright's ``sync_playwright``, or skip (fail under CI) without it or Chromium."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing.append("the playwright Python package (pip install playwright)")
    if importlib.util.find_spec("jupyterlab") is None:
        missing.append("jupyterlab (pip install -e '.[test]')")
    if missing:
        message = f"browser test needs {' and '.join(missing)}; run .ci/browser_deps.sh"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set: {message}")
        pytest.skip(message)
    return sync_playwright


@pytest.fixture(scope="module", autouse=True)
def fresh_artifacts():
    """Empty ``test-artifacts/browser/`` so that no screenshot of an earlier run is left."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 2.0) -> bytes:
    """GET on loopback, ignoring any *_proxy variables of the environment."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as response:
        return response.read()


def die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when pytest dies, even by SIGKILL (Linux)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Lab:
    """A JupyterLab server on 127.0.0.1 serving a temporary copy of ``notebooks/``."""

    def __init__(self, home: Path) -> None:
        self.root = home / "root"
        shutil.copytree(
            ROOT / "notebooks",
            self.root / "notebooks",
            ignore=shutil.ignore_patterns(".ipynb_checkpoints"),
        )
        for name in ("data", "figures"):  # the repository's layout, for relative paths
            if (ROOT / name).exists():
                (self.root / name).symlink_to(ROOT / name)
        settings = home / "settings"
        for plugin, values in LAB_SETTINGS.items():
            path = settings / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(
            os.environ,
            GRPO_EDU_FAST="1",
            JUPYTER_CONFIG_DIR=str(home / "config"),
            JUPYTER_DATA_DIR=str(home / "data"),
            JUPYTER_RUNTIME_DIR=str(home / "runtime"),
            JUPYTERLAB_SETTINGS_DIR=str(settings),
            JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
            IPYTHONDIR=str(home / "ipython"),
        )
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            f"--IdentityProvider.token={self.token}",  # ServerApp.token, deprecated
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={self.root}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            "--ServerApp.terminals_enabled=False",
        ]
        if os.geteuid() == 0:  # CI containers run as root
            command.append("--ServerApp.allow_root=True")
        self.log_path = home / "jupyterlab.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            command,
            cwd=self.root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited ({self.process.returncode}):\n{self.log()}")
            try:
                http_get(f"{self.url}/api/status?token={self.token}")
                return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"JupyterLab did not answer in {START_TIMEOUT_S} s:\n{self.log()}")

    def shutdown_kernels(self) -> None:
        """Shut down every kernel through the REST API (the next test starts its own)."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        headers = {"Authorization": f"token {self.token}"}
        kernels = json.loads(http_get(f"{self.url}/api/kernels?token={self.token}"))
        for kernel in kernels:
            request = urllib.request.Request(
                f"{self.url}/api/kernels/{kernel['id']}", method="DELETE", headers=headers
            )
            opener.open(request, timeout=10).close()

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        """Stop the server (it shuts its kernels down), then kill whatever it started."""
        import psutil

        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        for child in children:  # kernels run in sessions of their own
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(children, timeout=5)
        self._log.close()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.log_path, ARTIFACTS / "jupyterlab.log")


@pytest.fixture(scope="module")
def lab(sync_playwright, tmp_path_factory):
    server = Lab(tmp_path_factory.mktemp("jupyterlab"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(sync_playwright):
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


class Session:
    """One browser page on the lab, with its console and outside requests recorded."""

    def __init__(self, browser, lab: Lab, name: str) -> None:
        self.name, self.lab = name, lab
        self.console: list[str] = []
        self.outside: list[str] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 1500})
        self.context.route("**/*", self._guard)
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))

    def _guard(self, route) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob") or parts.hostname in LOOPBACK:
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def _on_console(self, message) -> None:
        if message.type in ("error", "warning"):
            self.console.append(f"{message.type}: {message.text}")

    def screenshot(self, label: str, element=None) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=ARTIFACTS / f"{self.name}_{label}_page.png", full_page=True)
        if element is not None:
            element.screenshot(path=ARTIFACTS / f"{self.name}_{label}_widget.png")

    def close(self) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"{self.name}_console.txt").write_text(
            "\n".join(self.console + [f"aborted outside request: {u}" for u in self.outside]) + "\n"
        )
        self.context.close()
        try:
            self.lab.shutdown_kernels()
        except OSError as err:  # the server is gone: Lab.stop still kills what is left
            print(f"could not shut the kernels down: {err}")


# ------------------------------------------------------------------------------ the driver
IMAGE_STATS = """async ([img, key]) => {
    await img.decode().catch(() => {});
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    window.__grpoPixels = window.__grpoPixels || {};
    window.__grpoPixels[key] = data;
    let ink = 0;
    for (let i = 0; i < data.length; i += 4)
        if (data[i] < 235 || data[i + 1] < 235 || data[i + 2] < 235) ink++;
    const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
    let binary = '';
    for (let i = 0; i < bytes.length; i += 0x8000)
        binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return {src: img.src, width: img.naturalWidth, height: img.naturalHeight,
            ink: ink / (data.length / 4), png: btoa(binary)};
}"""
INK = """img => {
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let ink = 0;
    for (let i = 0; i < data.length; i += 4)
        if (data[i] < 235 || data[i + 1] < 235 || data[i + 2] < 235) ink++;
    return ink / (data.length / 4);
}"""
"""Fraction of an image's pixels that are not (near) white."""
PIXELS_CHANGED = """([a, b]) => {
    const x = window.__grpoPixels[a], y = window.__grpoPixels[b];
    if (x.length !== y.length) return 1.0;
    let changed = 0;
    for (let i = 0; i < x.length; i += 4)
        if (x[i] !== y[i] || x[i + 1] !== y[i + 1] || x[i + 2] !== y[i + 2]) changed++;
    return changed / (x.length / 4);
}"""


def image_stats(session: Session, image, key: str) -> dict:
    stats = session.page.evaluate(IMAGE_STATS, [image.element_handle(), key])
    (ARTIFACTS / f"{session.name}_{key}_plot.png").write_bytes(base64.b64decode(stats.pop("png")))
    return stats


def notebook_errors(panel) -> list[str]:
    """Tracebacks and widget errors shown in the notebook's outputs."""
    stderr = panel.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    shown = panel.locator(".jp-OutputArea-output", has_text="Error displaying widget")
    return [
        text[-2000:]
        for text in stderr.all_inner_texts() + shown.all_inner_texts()
        if TRACEBACK.search(text) or "Error displaying widget" in text
    ]


def run_all_cells(session: Session, notebook: str, timeout_s: float) -> None:
    """Open the notebook, Run > Run All Cells, wait for the sentinel cell's output."""
    page = session.page
    # ?reset: a fresh workspace, not the tabs the previous test left open
    page.goto(f"{session.lab.url}/lab/tree/{notebook}?reset&token={session.lab.token}")
    panel = page.locator(".jp-NotebookPanel:visible")
    panel.locator(".jp-Cell").first.wait_for()
    # the status bar reads "No Kernel | Initializing", then "Python 3 (ipykernel) | Idle"
    page.get_by_text(KERNEL_IDLE).first.wait_for(timeout=START_TIMEOUT_S * 1000)
    panel.locator(".jp-Notebook").first.click()  # focus the notebook
    page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    deadline = time.monotonic() + timeout_s
    sentinel = panel.locator(".jp-OutputArea-output", has_text=SENTINEL)
    while time.monotonic() < deadline:
        if sentinel.count():
            return
        if errors := notebook_errors(panel):
            session.screenshot("error")
            pytest.fail(f"{notebook}: a cell failed in the browser:\n" + "\n---\n".join(errors))
        time.sleep(1)
    session.screenshot("timeout")
    pytest.fail(f"{notebook}: cells still running after {timeout_s} s")


def check_every_explorer_drawn(session: Session, explorers) -> None:
    """Every explorer in the notebook shows a loaded, non-blank plot (a screenshot of each)."""
    for i, explorer in enumerate(explorers.all()):
        image = explorer.locator("> img.widget-image")
        session.page.wait_for_function(
            "img => img.src && img.complete && img.naturalWidth > 0", arg=image.element_handle()
        )
        ink = session.page.evaluate(INK, image.element_handle())
        explorer.scroll_into_view_if_needed()
        explorer.screenshot(path=ARTIFACTS / f"{session.name}_explorer{i + 1}.png")
        intro = explorer.locator(".widget-html").first.inner_text()[:60]
        assert ink > 0.02, f"explorer {i + 1} ({intro!r}) shows a blank plot"


def move_slider_and_check_redraw(session: Session) -> None:
    """Find an explorer, click its first slider's track, and require a different plot."""
    page = session.page
    explorers = page.locator(".jp-NotebookPanel:visible .widget-vbox:has(> img.widget-image)")
    try:
        explorers.first.wait_for(timeout=20_000)
    except Exception:  # playwright's TimeoutError
        plain = page.locator(
            ".jp-OutputArea-output[data-mime-type='text/plain']", has_text="children=("
        )
        pytest.fail(
            "no explorer (a VBox with an Image) rendered in the notebook; "
            f"widget reprs shown as plain text instead: {plain.all_inner_texts()[:3]}; "
            f"browser console: {session.console[-10:]}"
        )
    check_every_explorer_drawn(session, explorers)
    preferred = explorers.filter(has_text=PREFERRED_EXPLORER)
    explorer = preferred.first if preferred.count() else explorers.first
    image = explorer.locator("> img.widget-image")
    page.wait_for_function(
        "img => img.src && img.complete && img.naturalWidth > 0", arg=image.element_handle()
    )
    explorer.scroll_into_view_if_needed()
    session.screenshot("before", explorer)
    before = image_stats(session, image, "before")
    assert before["src"].startswith(("blob:", "data:")), before["src"]
    assert before["width"] > 100 and before["height"] > 100, before
    assert before["ink"] > 0.02, f"the plot looks blank before the slider moved: {before}"

    slider = explorer.locator(".widget-hslider").first
    label = slider.locator(".widget-label").inner_text()
    readout = slider.locator(".widget-readout")
    old_value = readout.inner_text()
    track = slider.locator(".noUi-base")
    box = track.bounding_box()
    page.mouse.click(box["x"] + 0.15 * box["width"], box["y"] + box["height"] / 2)
    page.wait_for_function(
        "([el, old]) => el.textContent.trim() !== old", arg=[readout.element_handle(), old_value]
    )
    new_value = readout.inner_text()
    page.wait_for_function(
        "([img, old]) => img.src !== old && img.complete && img.naturalWidth > 0",
        arg=[image.element_handle(), before["src"]],
        timeout=REDRAW_TIMEOUT_S * 1000,
    )
    page.wait_for_timeout(300)  # let the new image paint before the screenshot
    session.screenshot("after", explorer)
    after = image_stats(session, image, "after")
    changed = page.evaluate(PIXELS_CHANGED, ["before", "after"])
    result = {"slider": label, "from": old_value, "to": new_value, "pixels_changed": changed}
    (ARTIFACTS / f"{session.name}_result.json").write_text(json.dumps(result, indent=1))
    print(f"{session.name}: {result}")
    assert after["ink"] > 0.02, f"the plot looks blank after the slider moved: {after}"
    assert changed > 0.005, f"moving {label!r} {old_value} -> {new_value} left the plot unchanged"


def check_clean(session: Session) -> None:
    page = session.page
    broken = page.locator(".jp-OutputArea-output", has_text="Error displaying widget")
    assert not broken.count(), broken.all_inner_texts()
    widget_errors = [
        m
        for m in session.console
        if m.startswith(("error", "pageerror")) and WIDGET_ERROR.search(m)
    ]
    assert not widget_errors, "widget errors in the browser console:\n" + "\n".join(widget_errors)
    unexpected = [u for u in session.outside if not u.startswith(EXPECTED_OUTSIDE)]
    assert not unexpected, f"the page tried to reach outside hosts: {unexpected}"


def drive(browser, lab: Lab, notebook: str, name: str) -> None:
    session = Session(browser, lab, name)
    try:
        run_all_cells(session, notebook, RUN_TIMEOUT_S[name])
        check_clean(session)  # a broken widget manager shows here first
        move_slider_and_check_redraw(session)
        check_clean(session)
    except BaseException:
        try:
            session.screenshot("failure")
        except Exception as err:  # the page may be gone; keep the test's own error
            print(f"no failure screenshot: {err}")
        raise
    finally:
        session.close()


def with_sentinel(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb.cells.append(nbformat.v4.new_code_cell(f"print({SENTINEL!r})"))
    return nb


# --------------------------------------------------------------------------------- tests
def test_course_notebook_widget_redraws_in_a_real_browser(browser, lab):
    """The course notebook with the clip explorer: all cells run, the slider redraws the plot."""
    target = next((t for t in COURSE_TARGETS if (ROOT / t).exists()), None)
    if target is None:
        pytest.skip(f"none of {COURSE_TARGETS} exists yet (test_notebooks.py fails for it)")
    copy = lab.root / target  # the lab's own copy: the committed file is never touched
    nbformat.write(with_sentinel(nbformat.read(copy, as_version=4)), copy)
    drive(browser, lab, target, "course")


def test_minimal_widget_notebook_redraws_in_a_real_browser(browser, lab):
    """A two-cell notebook showing clip_explorer: the browser check without a long notebook."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell("from grpo_edu import widgets\nwidgets.clip_explorer()")]
    nbformat.write(with_sentinel(nb), lab.root / "widget_smoke.ipynb")
    drive(browser, lab, "widget_smoke.ipynb", "minimal")
