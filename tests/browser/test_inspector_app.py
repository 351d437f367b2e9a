"""The inspector app (`python -m captcha_nb inspect`, Voilà) in a real browser: it renders, the buttons and filters
change what is shown, and an upload is read (or refused with a clear message)."""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
from pathlib import Path

import pytest
from browsing import free_port, start_server, stop_server, wait_until
from PIL import Image

from captcha_nb.views.widgets import PredictionInspector
from captcha_nb.views.workspace import held_out

# ipywidgets 8's FileUpload keeps its <input type=file> out of the page and clicks it from script; this puts it into
# the page instead of opening a dialog, so selenium can hand it a file.
CAPTURE_FILE_INPUT = """
const click = HTMLInputElement.prototype.click;
HTMLInputElement.prototype.click = function () {
  if (this.type !== 'file') { return click.call(this); }
  this.id = 'captured-upload';
  this.style.display = 'block';
  document.body.appendChild(this);
};
"""


@contextlib.contextmanager
def inspector_served(run_dir: Path, env: dict, log: Path):
    """`inspect --run RUN` on a free loopback port; yields the address with its token, stops the server after."""
    port = free_port()
    command = [sys.executable, "-m", "captcha_nb", "inspect", "--run", str(run_dir), "--port", str(port)]
    process = start_server(command, f"http://127.0.0.1:{port}/api/status", log, env)
    try:
        token = wait_until(lambda: next((line.split("token=")[1].split()[0] for line in log.read_text().splitlines()
                                         if "serving at" in line), None), 30, "inspect never said where it serves")
        yield f"http://127.0.0.1:{port}/?token={token}"
    finally:
        stop_server(process)


@pytest.fixture(scope="module")
def app(trained_run, browser_env, tmp_path_factory):
    log = tmp_path_factory.mktemp("voila") / "inspect.log"
    with inspector_served(trained_run.run_dir, browser_env, log) as url:
        yield url, log


@pytest.fixture
def run_without_data(trained_run, tmp_path):
    """A copy of the trained run whose split.json names a folder this machine does not have, as the committed
    reference run's does on a fresh clone without ../shared beside it."""
    run = tmp_path / "run-from-elsewhere"
    run.mkdir()
    for name in ("model.pt", "metrics.json"):
        shutil.copy(trained_run.run_dir / name, run / name)
    split = json.loads((trained_run.run_dir / "split.json").read_text(encoding="utf-8"))
    (run / "split.json").write_text(json.dumps({**split, "data_dir": str(tmp_path / "not-here")}), encoding="utf-8")
    return run


@pytest.fixture(scope="module")
def expected(trained_run):
    """What the Python side of the inspector holds for the same run: the counts the filters must show."""
    recogniser, val_set, _ = held_out(trained_run.run_dir)
    table = PredictionInspector(recogniser, val_set).table
    return {"all": len(table), "errors": int((~table["correct"]).sum()),
            "low confidence": int((table["confidence"] < 0.9).sum())}


def text_of(driver, css: str) -> str:
    from selenium.webdriver.common.by import By

    return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, css))


def counter(driver) -> str:
    return driver.execute_script(
        "return [...document.querySelectorAll('.widget-html-content')].map(e => e.textContent)"
        ".find(t => / of \\d+ \\(/.test(t)) || '';")


def shown_captcha(driver) -> str:
    """The file name of the captcha on show, from the line above its picture."""
    return driver.execute_script(
        "const t = [...document.querySelectorAll('.widget-html-content')].map(e => e.textContent)"
        ".find(t => t.includes(' — truth ')); return t ? t.split(' — ')[0] : '';")


def shown_picture(driver) -> str:
    """The address of the picture on show (a new blob: address whenever the picture is redrawn)."""
    return driver.execute_script(
        "const i = [...document.querySelectorAll('img')].find(i => i.offsetParent !== null && i.src);"
        "return i ? i.src : '';")


def click_button(driver, label: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.XPATH, f"//button[contains(normalize-space(.), '{label}')]").click()


def test_the_app_serves_only_on_loopback_and_says_where(app):
    url, log = app
    assert url.startswith("http://127.0.0.1:") and "serving at" in log.read_text()


def test_the_inspector_app_browses_filters_and_reads_uploads(browser, app, expected, screenshots, tmp_path):
    from selenium.webdriver.common.by import By

    url, _ = app
    browser.get(url)
    first = wait_until(lambda: counter(browser), 120, "the inspector never rendered")
    assert first == f"1 of {expected['all']} (all)"
    assert not browser.find_elements(By.CSS_SELECTOR, ".jp-InputArea, .jp-CodeCell-input")  # no code on show
    screenshots(browser, "app-1-rendered")

    captcha, picture = shown_captcha(browser), shown_picture(browser)
    assert captcha.endswith(".png") and picture
    click_button(browser, "next")
    wait_until(lambda: counter(browser) == f"2 of {expected['all']} (all)", 30, "next did not move on")
    wait_until(lambda: shown_captcha(browser) not in ("", captcha) and shown_picture(browser) != picture, 30,
               "next did not change the captcha shown")
    screenshots(browser, "app-2-next")
    click_button(browser, "previous")
    wait_until(lambda: counter(browser) == f"1 of {expected['all']} (all)", 30, "previous did not go back")
    wait_until(lambda: shown_captcha(browser) == captcha, 30, "previous did not show the first captcha again")

    for name in ("errors", "low confidence"):
        click_button(browser, name)
        wanted = f"1 of {expected[name]} ({name})" if expected[name] else f"0 of 0 ({name})"
        wait_until(lambda wanted=wanted: counter(browser) == wanted, 30, f"the {name} filter does not show {wanted!r}")
        screenshots(browser, f"app-3-filter-{name.replace(' ', '-')}")
    click_button(browser, "all")

    browser.execute_script(CAPTURE_FILE_INPUT)
    good = tmp_path / "captcha.png"
    Image.new("RGB", (100, 32), "white").save(good)
    upload(browser, good)
    wait_until(lambda: "captcha.png</code> reads" in browser.page_source or "captcha.png reads" in text_of(browser, "body"),
               60, "the uploaded PNG was not read")
    scroll_to_end(browser)
    screenshots(browser, "app-4-upload-png")

    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    upload(browser, text)
    wait_until(lambda: "notes.txt is not a readable image" in text_of(browser, "body"), 60,
               "the text file was not refused with a clear message")
    scroll_to_end(browser)
    screenshots(browser, "app-5-upload-text")


def scroll_to_end(driver) -> None:
    # Voilà scrolls its own container, not the window.
    driver.execute_script("document.querySelectorAll('*').forEach(e => { if (e.scrollHeight > e.clientHeight) "
                          "e.scrollTop = e.scrollHeight; }); window.scrollTo(0, document.body.scrollHeight);")


def upload(driver, path) -> None:
    from selenium.webdriver.common.by import By

    for old in driver.find_elements(By.ID, "captured-upload"):
        driver.execute_script("arguments[0].remove()", old)
    driver.find_element(By.CSS_SELECTOR, ".widget-upload").click()
    field = wait_until(lambda: driver.find_elements(By.ID, "captured-upload"), 10, "the upload input never appeared")
    field[0].send_keys(str(path))  # the caller waits for the app's answer to this upload


def test_a_run_whose_images_are_elsewhere_opens_says_where_and_reads_uploads(browser, run_without_data, browser_env,
                                                                              screenshots, tmp_path):
    log = tmp_path / "inspect.log"
    with inspector_served(run_without_data, browser_env, log) as url:
        assert "not on this machine" in log.read_text()
        browser.get(url)
        wait_until(lambda: "which is not on this machine" in text_of(browser, "body"), 120,
                   "the app did not say where the run's images were expected")
        body = text_of(browser, "body")
        assert str(tmp_path / "not-here") in body and "--data DIR" in body and "Traceback" not in body
        assert counter(browser) == "0 of 0 (all)"
        screenshots(browser, "app-6-no-data")

        browser.execute_script(CAPTURE_FILE_INPUT)
        good = tmp_path / "captcha.png"
        Image.new("RGB", (100, 32), "white").save(good)
        upload(browser, good)
        wait_until(lambda: "captcha.png reads" in text_of(browser, "body"), 60,
                   "an upload was not read by the app without data")
