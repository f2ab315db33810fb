"""A real browser for the gateway's page: Debian's chromium, headless, driven by selenium through
Debian's chromedriver (no Selenium Manager download), plus the few page actions the tests share.

Run as a module it makes the README's screenshot of a running gateway:
`python -m tests.support.browser http://127.0.0.1:8080 docs/page.png --model sentiment`.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_S = 30.0
DESKTOP = (1280, 900)
PHONE = (390, 844)
# headless, no sandbox (CI runs as root in a container), nothing fetched from the network but the gateway
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
REVIEWS = (
    "这家酒店很干净，服务也好，下次还来。",
    "房间太脏了，再也不来了。",
    "物流很快，包装完好，和描述的一样。",
    "客服态度恶劣，等了一个小时都没人理。",
)


@contextlib.contextmanager
def chromium(profile: Path, size: tuple[int, int] = DESKTOP) -> Iterator[Any]:
    """A headless chromium with its own profile folder, logging the console (goog:loggingPrefs)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Any, condition: Any) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S).until(condition)


def open_page(driver: Any, url: str) -> None:
    """Load the page and wait until its models panel was filled (or said why not)."""
    driver.get(url)
    wait_for(
        driver,
        lambda d: d.execute_script(
            "return document.querySelector('#models tbody tr') !== null || "
            "!document.getElementById('models-message').hidden"
        ),
    )


def classify(driver: Any, texts: Sequence[str], **fields: str) -> str:
    """Fill the form as a user types (`fields`: element id -> value, e.g. {"top-k": "2"}), click Classify
    and wait for the answer or the error message; returns the message ("" when the answer is shown)."""
    from selenium.webdriver.common.by import By

    for element_id, value in {**fields, "texts": "\n".join(texts)}.items():
        field = driver.find_element(By.ID, element_id)
        field.clear()
        field.send_keys(value)
    driver.find_element(By.ID, "classify").click()
    wait_for(
        driver,
        lambda d: d.execute_script(
            "return !document.getElementById('classify').disabled && "
            "(!document.getElementById('answer').hidden || !document.getElementById('message').hidden)"
        ),
    )
    return text_of(driver, "message")


def shown_results(driver: Any) -> list[dict[str, Any]]:
    """What the page shows per text: its text, label (None: the text's error is shown) and top-k label names."""
    script = """return [...document.querySelectorAll('#results .result')].map((item) => ({
        text: item.querySelector('.result-text').textContent,
        label: item.dataset.label === undefined ? null : item.querySelector('.result-label').textContent,
        top_k: [...item.querySelectorAll('.bar-name')].map((n) => n.textContent)}));"""
    return list(driver.execute_script(script))


def text_of(driver: Any, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, element_id).text)


def console_entries(driver: Any) -> list[dict[str, Any]]:
    """The browser console since the last call (chromedriver hands each entry out once)."""
    return list(driver.get_log("browser"))


def horizontal_overflow(driver: Any) -> int:
    """How many CSS pixels the page is wider than the window (0: nothing to scroll sideways)."""
    return int(driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth"))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="screenshot the gateway's page after classifying a few reviews")
    parser.add_argument("url", help="the gateway, e.g. http://127.0.0.1:8080/")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--model", help="model name (default: the first one the gateway lists)")
    parser.add_argument("--top-k", default="2")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="textclf-browser-") as profile, chromium(Path(profile)) as driver:
        open_page(driver, args.url)
        classify(driver, REVIEWS, **({"model": args.model} if args.model else {}), **{"top-k": args.top_k})
        wait_for(  # the page explains each result: the screenshot shows the highlighted tokens
            driver,
            lambda d: d.execute_script(
                "return document.querySelectorAll('#results .tokens').length"
                " === document.querySelectorAll('#results .result').length"
            ),
        )
        height = int(driver.execute_script("return document.documentElement.scrollHeight"))
        metrics = {"width": DESKTOP[0], "height": height, "deviceScaleFactor": 1, "mobile": False}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)  # the whole page, not the window
        args.out.write_bytes(driver.get_screenshot_as_png())
    print(args.out)


if __name__ == "__main__":
    main()
