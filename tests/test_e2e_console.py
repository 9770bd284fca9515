"""The console page in a real headless Chromium, over the real broker, job and stats service: what it
shows equals the service's JSON, its charts fill and move while records flow without a reload, and the
lag it charts grows when records come faster than the job scores them and falls back to 0 after; the
browser logs no error. With UPDATE_SCREENSHOT=1 it also saves its screenshot as docs/console.png."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client import catalog, publish
from client.console import assets
from modelstream.settings import PROJECT_ROOT, Settings
from protobufs.modelstream_pb2 import ModelDescriptor as D
from tests.conftest import WINE_DIR, JobStarter, stats_service_running, wait_for
from tests.onnx_builders import wine_regression
from tests.test_e2e_stats import get

pytestmark = pytest.mark.e2e
CSV = WINE_DIR / "winequality_red.csv"
SCREENSHOT = PROJECT_ROOT / "docs" / "console.png"
BROWSER, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def _why_no_browser() -> str | None:
    if BROWSER is None or DRIVER is None:
        return "no chromium and chromedriver here (`make test` installs Debian's where it runs as root)"
    if not assets.installed():
        return "no chart library in .cache/console (`make setup` fetches it)"
    return None


# checked before any fixture is set up: a test that cannot run never starts the session's broker
NO_BROWSER = _why_no_browser()

# what the page shows, read from its DOM and its chart objects
READ_PAGE = """
const page = window.modelstream, out = {loadedAt: page.loadedAt, updates: page.updates, types: {}};
const lag = document.querySelector('[data-figure="lag-total"]');
out.lag = lag ? lag.dataset.value : null;
out.lagPoints = page.charts.lag ? page.charts.lag.data.slice(1).flat().filter(v => v !== null) : [];
for (const panel of document.querySelectorAll('section[data-type]')) {
  const type = panel.dataset.type, rate = page.charts['rate:' + type];
  out.types[type] = {
    usage: Number(panel.querySelector('[data-figure="usage"]').dataset.value),
    serving: panel.dataset.serving,
    ratePoints: rate ? rate.data[1].filter(v => v !== null) : [],
  };
}
return out;
"""


@pytest.fixture
def browser() -> Iterator[Any]:
    if NO_BROWSER is not None:
        pytest.skip(NO_BROWSER)
    assert BROWSER is not None and DRIVER is not None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1100"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the page's console, for get_log
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def console_settings(stack_settings: Settings) -> Settings:
    """The job's and the service's settings: checkpoints (so the lag) and stats every second or less."""
    return stack_settings.replace(checkpoint_interval_ms=1000, stats_interval_ms=500)


@pytest.fixture
def console_url(console_settings: Settings) -> Iterator[str]:
    with stats_service_running(console_settings) as url:
        yield url


def _publish_in_background(settings: Settings, data_type: str, count: int, rate: float) -> threading.Thread:
    thread = threading.Thread(
        target=publish.publish_records,
        args=(settings, CSV),
        kwargs={"data_type": data_type, "count": count, "rate": rate, "id_prefix": data_type},
    )
    thread.start()
    return thread


def _json_view(url: str) -> dict[str, Any]:
    """The same figures as READ_PAGE, from the stats service's JSON."""
    models = {m["data_type"]: m for m in get(f"{url}/models")["models"]}
    return {
        "lag": str(get(f"{url}/lag")["lag"]),
        "types": {t: {"usage": m["usage"], "serving": m["version"]} for t, m in models.items()},
    }


def _same_as_json(driver: Any, url: str) -> bool:
    shown = driver.execute_script(READ_PAGE)
    page = {
        "lag": shown["lag"],
        "types": {t: {k: v[k] for k in ("usage", "serving")} for t, v in shown["types"].items()},
    }
    return bool(page == _json_view(url))


def _errors_logged(driver: Any) -> list[dict[str, Any]]:
    """The browser's SEVERE log entries but a missing favicon's 404."""
    return [
        entry
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and "favicon.ico" not in entry["message"]
    ]


@pytest.mark.skipif(NO_BROWSER is not None, reason=NO_BROWSER or "")
def test_the_console_shows_what_the_service_knows_and_moves_while_records_flow(
    browser: Any, console_settings: Settings, start_job: JobStarter, console_url: str, tmp_path: Path
) -> None:
    settings = console_settings
    job = start_job(settings)
    assert job.poll() is None
    publish.publish_model_file(
        settings, WINE_DIR / "wine_quality_logreg.onnx", "wine-onnx", "wine", "onnx", version="1"
    )
    slow = D(name="wine-slow", dataType="wine-slow", version="7", data=wine_regression(60))  # ~150 ms a batch
    slow.modeltype = D.ONNX
    publish.publish_model(settings, slow)
    browser.get(console_url + "/")

    def shown() -> dict[str, Any]:
        return dict(browser.execute_script(READ_PAGE))

    # records of both data types flow: the page's figures and charts move, without a reload
    flows = [
        _publish_in_background(settings, "wine", 3000, 300),
        _publish_in_background(settings, "wine-slow", 1000, 100),
    ]
    wait_for(lambda: {"wine", "wine-slow"} <= set(shown()["types"]), 90, "both panels")
    first = shown()
    wait_for(
        lambda: shown()["types"]["wine"]["usage"] > first["types"]["wine"]["usage"] + 300,
        30,
        "usage to grow",
    )
    moving = shown()
    assert moving["loadedAt"] == first["loadedAt"] and moving["updates"] > first["updates"], (
        "updated in place"
    )
    wait_for(lambda: max(shown()["types"]["wine"]["ratePoints"], default=0) > 0, 15, "a rate")
    for flow in flows:
        flow.join()

    # once all is scored and checkpointed: the page's usage, serving version and lag equal the JSON
    def all_scored() -> bool:
        stats = catalog.latest_stats(settings)
        return [stats[t].current.usage if t in stats else 0 for t in ("wine", "wine-slow")] == [3000, 1000]

    wait_for(all_scored, 90, "every record scored")
    wait_for(lambda: shown()["lag"] == "0", 60, "a checkpoint to commit the offsets")
    wait_for(lambda: _same_as_json(browser, console_url), 30, "the page to show what the JSON says")
    settled = shown()
    assert settled["types"]["wine"] == {**settled["types"]["wine"], "usage": 3000, "serving": "1"}
    assert settled["types"]["wine-slow"]["serving"] == "7" and settled["lag"] == "0"

    # records faster than the slow model scores them: the lag grows on the page, then falls back to 0
    burst = _publish_in_background(settings, "wine-slow", 20_000, 5000)
    seen: list[int] = []
    while burst.is_alive():
        value = shown()["lag"]
        if value not in (None, ""):
            seen.append(int(value))
        time.sleep(0.5)
    burst.join()
    assert max(seen, default=0) > 2000 and seen[-1] > seen[0], f"lag seen while publishing: {seen}"
    assert max(shown()["lagPoints"], default=0) > 2000, "the lag chart shows the backlog"
    browser.save_screenshot(str(tmp_path / "console.png"))
    wait_for(lambda: shown()["lag"] == "0", 120, "the backlog to be scored")
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        shutil.copy(tmp_path / "console.png", SCREENSHOT)

    # a data type's model history, from its panel's link
    browser.get(f"{console_url}/console/wine")
    wait_for(lambda: bool(browser.find_elements("css selector", 'tr[data-version="1"]')), 15, "history table")
    usage = browser.find_element("css selector", 'tr[data-version="1"] td[data-usage]').get_attribute(
        "data-usage"
    )
    assert int(usage) == get(f"{console_url}/stats/wine")["current"]["usage"] == 3000
    assert _errors_logged(browser) == [], "the page logged errors"
