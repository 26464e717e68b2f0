"""Driving the system Chromium headless (Selenium with the distribution's chromedriver: nothing downloaded)."""

import shutil

import pytest

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
DRIVER = shutil.which("chromedriver")
HOW = "apt-get install chromium chromium-driver (Debian/Ubuntu), then pip install selenium"


def browser(width: int = 1100, height: int = 900):
    """A headless Chromium, or the test is skipped saying how to get one."""
    webdriver = pytest.importorskip("selenium.webdriver", reason=f"selenium is not installed: {HOW}")
    if CHROMIUM is None or DRIVER is None:
        pytest.skip(f"no Chromium/chromedriver on this machine: {HOW}")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 f"--window-size={width},{height}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    # A window is at least 500 px wide even headless: a phone's width is emulated instead
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
    return driver
