"""The labelling app (`python -m captcha_nb label`, Voilà) in a real browser: a person types labels and presses
Enter, the app is killed, started again, and carries on; labels.csv holds every saved label, once."""

from __future__ import annotations

import csv
import os
import signal
import sys

import pytest
from browsing import free_port, start_server, stop_server, wait_until


def saved(folder) -> list[list[str]]:
    path = folder / "labels.csv"
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))[1:]


def start_app(folder, run_dir, env, log):
    port = free_port()
    command = [sys.executable, "-m", "captcha_nb", "label", "--images", str(folder), "--run", str(run_dir),
               "--port", str(port)]
    process = start_server(command, f"http://127.0.0.1:{port}/api/status", log, env)
    token = wait_until(lambda: next((line.split("token=")[1].split()[0] for line in log.read_text().splitlines()
                                     if "serving at" in line), None), 30, "label never said where it serves")
    return process, f"http://127.0.0.1:{port}/?token={token}"


def counter(driver) -> str:
    return driver.execute_script(
        "return [...document.querySelectorAll('.widget-html-content')].map(e => e.textContent)"
        ".find(t => / labelled/.test(t)) || '';")


def type_label(driver, text: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = wait_until(lambda: [e for e in driver.find_elements(By.CSS_SELECTOR, ".widget-text input")
                              if e.is_enabled()], 60, "no text box to type in")[0]
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    box.send_keys(text, Keys.ENTER)


def showing(driver) -> str | None:
    """The picture the app shows now, as its note names it; the note is set after the picture and its pre-filled
    reading (Labeller.show), so once it names a picture, that picture's reading is in the text box."""
    import re

    found = re.search(r"([\w-]+\.png)", text_of_notes(driver))
    return found.group(1) if found else None


def text_of_notes(driver) -> str:
    from selenium.webdriver.common.by import By

    return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, ".widget-html"))


def wait_for_next_picture(driver, folder) -> None:
    done = {name for name, _ in saved(folder)}
    wait_until(lambda: (showing(driver) or "").endswith(".png") and showing(driver) not in done, 30,
               "the app did not move on to a picture that has no label yet")


@pytest.fixture
def folder(neutral_copies):
    return neutral_copies(6, "img{}.png")


def test_labels_typed_in_the_browser_survive_a_killed_app(browser, folder, trained_run, browser_env, tmp_path,
                                                          screenshots):
    process, url = start_app(folder, trained_run.run_dir, browser_env, tmp_path / "label-1.log")
    try:
        browser.get(url)
        wait_until(lambda: counter(browser).startswith("0 of 6 labelled"), 120, "the labelling app never rendered")
        screenshots(browser, "label-1-rendered")
        # The captcha is shown in its own proportions, not stretched to the width of the app.
        shapes = browser.execute_script("return [...document.querySelectorAll('img.widget-image')]"
                                        ".map(e => [e.clientWidth, e.clientHeight, e.naturalWidth, e.naturalHeight]);")
        assert shapes and all(abs(w / h - nw / nh) < 0.05 * nw / nh for w, h, nw, nh in shapes), shapes
        type_label(browser, "ab23")
        wait_until(lambda: len(saved(folder)) == 1, 30, "Enter did not save the first label")
        wait_until(lambda: counter(browser).startswith("1 of 6 labelled"), 30, "the counter did not follow")
        wait_for_next_picture(browser, folder)
        type_label(browser, "cd32")
        wait_until(lambda: len(saved(folder)) == 2, 30, "Enter did not save the second label")
        wait_until(lambda: counter(browser).startswith("2 of 6 labelled"), 30, "the counter did not follow")
        screenshots(browser, "label-2-two-saved")
    finally:
        # Killed, not asked to stop: nothing saved may depend on a clean shutdown.
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    first_two = saved(folder)
    assert [label for _, label in first_two] == ["ab23", "cd32"] and len({name for name, _ in first_two}) == 2

    process, url = start_app(folder, trained_run.run_dir, browser_env, tmp_path / "label-2.log")
    try:
        browser.get(url)
        wait_until(lambda: counter(browser).startswith("2 of 6 labelled"), 120, "a restart did not carry on")
        wait_for_next_picture(browser, folder)
        type_label(browser, "dd22")
        wait_until(lambda: len(saved(folder)) == 3, 30, "Enter after the restart did not save")
        screenshots(browser, "label-3-after-restart")
    finally:
        stop_server(process)
    rows = saved(folder)
    assert rows[:2] == first_two and rows[2][1] == "dd22" and rows[2][0] not in {n for n, _ in first_two}
