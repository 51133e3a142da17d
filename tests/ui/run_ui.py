"""Browser test: notebook 01 in JupyterLab, driven in headless Chromium as a user would (`make test-ui`).

Not collected by `pytest tests` (the file name does not start with `test_`): it needs a browser and runs after
`make test` in CI. What it does:
1. installs what is missing: Debian's `chromium` (apt-get, as root) and the `playwright` Python package (the
   browser is never downloaded: Playwright drives /usr/bin/chromium);
2. starts JupyterLab on 127.0.0.1, a free port and a token, with temporary settings, runtime, workspace, config
   and cache folders, on a temporary copy of notebook 01 (autosave cannot touch the work tree);
3. opens the notebook: it must not be marked modified (kernelspec and metadata as the kernel writes them);
4. Run All; moves each control of the patch explorer and checks that the image changes; Run All again in the same
   kernel; no error output, no browser console error;
5. shuts JupyterLab and its kernels down by process id and checks that `git status` is as before.
Exit status 0 when every check passes; the time taken is printed.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "01_preprocessing.ipynb"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")  # Debian's package; any Chromium or Chrome
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RUN_TIMEOUT_S = 180
CONTROL_TIMEOUT_S = 60
# Test-only JupyterLab settings: every cell in the DOM (no windowing), so the checks see all outputs.
TEST_SETTINGS = {"@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"}}


def log(msg: str) -> None:
    print(f"[test-ui {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def ensure_chromium() -> None:
    """Install Debian's chromium when /usr/bin/chromium is missing (needs root: apt-get)."""
    if Path(CHROMIUM).exists():
        return
    if CHROMIUM != "/usr/bin/chromium":
        sys.exit(f"CHROMIUM={CHROMIUM} does not exist")
    if os.geteuid() != 0:
        sys.exit(f"{CHROMIUM} is missing: run `sudo apt-get update && sudo apt-get install -y chromium`, then again")
    log("installing chromium (apt-get)")
    subprocess.run(["apt-get", "update"], check=True)
    subprocess.run(["apt-get", "install", "-y", "chromium"], check=True, env={**os.environ,
                                                                          "DEBIAN_FRONTEND": "noninteractive"})


def ensure_playwright() -> None:
    """Install the playwright Python package into this environment (never its browser download)."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        log("installing playwright (pip)")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "playwright"], check=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout


class Lab:
    """A JupyterLab server in its own process group, with every folder it writes in `tmp`."""

    def __init__(self, tmp: Path):
        self.tmp, self.port, self.token = tmp, free_port(), uuid.uuid4().hex
        self.url = f"http://127.0.0.1:{self.port}"
        settings = tmp / "user-settings"
        for name, values in TEST_SETTINGS.items():
            (settings / name).parent.mkdir(parents=True, exist_ok=True)
            (settings / name).write_text(json.dumps(values))
        env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp / "config"),
               "JUPYTER_DATA_DIR": str(tmp / "data"), "IPYTHONDIR": str(tmp / "ipython"),
               "MPLCONFIGDIR": str(tmp / "mpl"), "RADIOLIB_CACHE": str(tmp / "cache"),
               "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
        env.pop("RADIOLIB_FRONTEND", None)
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={tmp / 'work'}",
               f"--LabApp.app_settings_dir={ROOT / 'jupyter'}", f"--LabApp.user_settings_dir={settings}",
               f"--LabApp.workspaces_dir={tmp / 'workspaces'}"] + (["--allow-root"] if os.geteuid() == 0 else [])
        self.log = open(tmp / "jupyter.log", "w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=tmp / "work",
                                     start_new_session=True)
        self._wait_ready()

    def api(self, path: str, method: str = "GET"):
        req = urllib.request.Request(f"{self.url}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def _wait_ready(self, timeout: float = 90) -> None:
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("JupyterLab exited:\n" + (self.tmp / "jupyter.log").read_text()[-3000:])
            try:
                self.api("/api/status")
                return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError("JupyterLab did not start within 90 s")

    def stop(self) -> None:
        """Shut the kernels down through the server, then end the server's process group by its id."""
        try:
            for kernel in self.api("/api/kernels"):
                self.api(f"/api/kernels/{kernel['id']}", method="DELETE")
        except OSError as err:
            log(f"kernel shutdown through the API failed ({err}); ending the server")
        pgid = os.getpgid(self.proc.pid)
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.log.close()


class Notebook:
    """The notebook as the browser shows it."""

    def __init__(self, page):
        self.page, self.kernel_sockets = page, []
        page.on("websocket", lambda ws: self.kernel_sockets.append(ws.url) if "/api/kernels/" in ws.url else None)

    def wait_idle(self, timeout: float = 90) -> None:
        """Wait until the kernel is connected (its websocket is open) and idle, as the status bar says."""
        end = time.time() + timeout
        while time.time() < end:
            status = self.page.locator("#jp-main-statusbar").inner_text()
            if self.kernel_sockets and re.search(r"\|\s*Idle", status):
                return
            self.page.wait_for_timeout(500)
        raise TimeoutError(f"the kernel was not connected and idle within {timeout} s")

    def dirty(self) -> bool:
        return self.page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-dirty").count() > 0

    def run_all(self) -> float:
        """Run > Run All Cells; wait until every code cell has an execution count and the kernel is idle."""
        start = time.time()
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        self.page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        self.page.wait_for_timeout(1000)
        end = start + RUN_TIMEOUT_S
        while time.time() < end:
            prompts = self.page.locator(".jp-CodeCell .jp-InputArea-prompt").all_inner_texts()
            if self.errors():
                break
            if prompts and all(re.fullmatch(r"\[\d+\]:", p.strip()) for p in prompts):
                self.wait_idle()
                return time.time() - start
            self.page.wait_for_timeout(1000)
        raise AssertionError(f"Run All did not finish within {RUN_TIMEOUT_S} s; errors: {self.errors()}")

    def errors(self) -> list[str]:
        return self.page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'], "
                                 ".jp-RenderedText[data-mime-type='application/vnd.jupyter.error']"
                                 ).all_inner_texts()

    def explorer_image(self) -> str:
        img = self.page.locator(".widget-output img").first
        img.wait_for(timeout=CONTROL_TIMEOUT_S * 1000)
        return img.get_attribute("src")

    def control(self, description: str):
        return self.page.locator(".widget-inline-hbox", has=self.page.locator(
            "label", has_text=re.compile(f"^{re.escape(description)}$"))).first

    def move(self, description: str) -> None:
        """Change one explorer control as a user would: next option of a dropdown, an arrow key on a slider."""
        box = self.control(description)
        select = box.locator("select")
        if select.count():
            options = select.locator("option").all_inner_texts()
            current = select.evaluate("s => s.selectedIndex")
            select.select_option(index=(current + 1) % len(options))
            return
        readout = box.locator(".widget-readout")  # a slider's number, editable as in JupyterLab
        value = int(readout.inner_text().strip())
        target = str(value - 1 if value > 1 else value + 1)
        readout.click()
        self.page.keyboard.press("Control+a")
        self.page.keyboard.type(target)
        self.page.keyboard.press("Enter")
        self.page.wait_for_timeout(500)
        assert readout.inner_text().strip() == target, f"the {description} slider did not take {target}"

    def slider_value(self, description: str) -> str:
        return self.control(description).locator(".widget-readout").inner_text().strip()


def check_controls(nb: Notebook) -> list[str]:
    """Each explorer control changes the image; returns what was checked."""
    checked = []
    for description in ("patient", "slice", "channel", "patch size"):
        nb.wait_idle()  # the previous move's redraws (a new patient also moves the slice) have landed
        nb.page.wait_for_timeout(1000)
        before = nb.explorer_image()
        nb.move(description)
        end = time.time() + CONTROL_TIMEOUT_S
        log(f"moved {description}")
        while nb.explorer_image() == before:
            if time.time() > end:
                raise AssertionError(f"moving the explorer's {description!r} control did not change the image")
            nb.page.wait_for_timeout(250)
        checked.append(description)
    return checked


def check_settings(lab: Lab) -> None:
    """The project's overrides (jupyter/overrides.json, as `make lab` uses them) are the settings' defaults."""
    def default(plugin: str, key: str):
        return lab.api(f"/lab/api/settings/{plugin}")["schema"]["properties"][key]["default"]
    assert default("@jupyter-widgets/jupyterlab-manager:plugin", "saveState") is False
    assert default("@jupyterlab/apputils-extension:notification", "fetchNews") == "false", \
        "jupyter/overrides.json was not read"


def drive(lab: Lab) -> dict:
    from playwright.sync_api import sync_playwright
    console, report = [], {}
    check_settings(lab)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: console.append(f"page error: {e}"))
            nb = Notebook(page)
            page.goto(f"{lab.url}/lab/tree/{NOTEBOOK}?token={lab.token}", timeout=90_000)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
            nb.wait_idle(timeout=90)
            log("notebook open, kernel idle")
            page.wait_for_timeout(3000)  # kernel info and metadata updates land
            assert not nb.dirty(), "opening the notebook marked it modified (kernelspec or metadata differ)"
            report["first Run All (s)"] = round(nb.run_all(), 1)
            log(f"Run All done in {report['first Run All (s)']} s")
            assert not nb.errors(), f"errors after the first Run All: {nb.errors()}"
            assert page.locator(".widget-output img").count() == 1, "the patch explorer shows no live image"
            first_slice = nb.slider_value("slice")
            assert first_slice.isdigit() and int(first_slice) >= 1, f"slice slider shows {first_slice!r}"
            report["controls that change the image"] = check_controls(nb)
            log("controls checked")
            report["second Run All (s)"] = round(nb.run_all(), 1)
            log(f"second Run All done in {report['second Run All (s)']} s")
            assert not nb.errors(), f"errors after Run All again in the same kernel: {nb.errors()}"
            report["controls after the second run"] = check_controls(nb)
            page.keyboard.press("Control+s")
            page.wait_for_timeout(1000)
        finally:
            browser.close()
    assert not console, "browser console errors:\n" + "\n".join(console)
    return report


def main() -> int:
    start = time.time()
    ensure_chromium()
    ensure_playwright()
    status_before = git_status()
    with tempfile.TemporaryDirectory(prefix="radiolib-ui-") as tmp:
        tmp = Path(tmp)
        (tmp / "work").mkdir()
        shutil.copy(ROOT / "notebooks" / NOTEBOOK, tmp / "work" / NOTEBOOK)
        log(f"JupyterLab on a copy of {NOTEBOOK} in {tmp}")
        lab = Lab(tmp)
        try:
            report = drive(lab)
        except Exception:
            log(f"JupyterLab log:\n{(tmp / 'jupyter.log').read_text()[-3000:]}")
            raise
        finally:
            lab.stop()
        saved = json.loads((tmp / "work" / NOTEBOOK).read_text())
        assert "widgets" not in saved["metadata"], "JupyterLab saved widget state into the notebook"
    assert git_status() == status_before, f"the work tree changed:\n{git_status()}"
    for key, value in report.items():
        log(f"{key}: {value}")
    log(f"passed in {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
