"""Browser tests: Debian's Chromium driven by its own chromedriver through selenium, against servers on loopback.

Nothing is downloaded: without /usr/bin/chromium and /usr/bin/chromedriver (`.ci/run` installs them with apt-get)
every test here is skipped with one line saying so. Every server, kernel and browser started here is stopped, pass or
fail, and ports are taken free from the system, so a port in use never fails a test.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from pathlib import Path

import pytest
from browsing import free_port, start_server, stop_server

from captcha_nb import PROJECT_ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SCREENSHOTS = PROJECT_ROOT / "build" / "browser"

if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
    pytest.skip("no Chromium/chromedriver here (apt-get install chromium chromium-driver): browser tests skipped",
                allow_module_level=True)


@pytest.fixture(scope="session")
def screenshots():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(driver, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        driver.save_screenshot(str(path))
        return path

    return take


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                     "--window-size=1400,1000", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def browser_env(tmp_path_factory, tiny_dir):
    """The environment of the servers under test: the tiny data set, a short training, runs in a temporary folder."""
    runs = tmp_path_factory.mktemp("browser-runs")
    return {**os.environ, "CAPTCHA_DATA_DIR": str(tiny_dir), "CAPTCHA_NB_QUICK_MINUTES": "0.1",
            "CAPTCHA_NB_RUNS_DIR": str(runs), "PYTHONPATH": str(PROJECT_ROOT)}


@pytest.fixture(scope="session")
def jupyterlab(tmp_path_factory, browser_env):
    """JupyterLab on a free loopback port with a random token, serving a copy of the numbered notebooks."""
    root = tmp_path_factory.mktemp("lab")
    for notebook in sorted((PROJECT_ROOT / "notebooks").glob("0[1-5]_*.ipynb")):
        shutil.copy(notebook, root / notebook.name)
    port, token = free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}", "--allow-root",
               # Nothing that would reach out to the internet, which this machine does not have.
               "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.extension_manager=readonly",
               # window.jupyterapp, so a test waits on the application's own promises rather than on the page.
               "--LabApp.expose_app_in_browser=True"]
    base = f"http://127.0.0.1:{port}"
    process = start_server(command, f"{base}/api/status?token={token}", root / "server.log", browser_env)
    try:
        yield {"base": base, "token": token, "root": root}
    finally:
        stop_server(process)
