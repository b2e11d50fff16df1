"""Open a report page in headless Chromium (Debian's chromium + chromedriver through selenium)
and measure what a reader at 1280 x 800 sees."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMEDRIVER = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")

MEASURE = """
const page = document.documentElement;
const out = {scrollWidth: page.scrollWidth, clientWidth: page.clientWidth, images: [], tables: []};
for (const img of document.images) {
  out.images.push({alt: img.alt.slice(0, 60), complete: img.complete, width: img.naturalWidth});
}
for (const table of document.querySelectorAll('table')) {
  const box = table.getBoundingClientRect();
  const parent = table.parentElement;
  const pbox = parent.getBoundingClientRect();
  const style = getComputedStyle(parent);
  const inner = pbox.right - parseFloat(style.borderRightWidth);
  out.tables.push({id: (table.closest('[id]') || {}).id || '', width: table.scrollWidth,
                   room: parent.clientWidth, right: box.right, parentRight: inner,
                   hidden: box.width === 0});
}
out.sticky = [];
for (const box of document.querySelectorAll('.table-box.long')) {
  if (box.scrollHeight <= box.clientHeight) continue;
  box.scrollTop = box.scrollHeight / 2;
  const head = box.querySelector('thead').getBoundingClientRect().top;
  out.sticky.push({table: box.dataset.table, offset: head - box.getBoundingClientRect().top});
  box.scrollTop = 0;
}
return out;
"""


def missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    if not any(Path(p).exists() for p in CHROMIUM) and not shutil.which("chromium"):
        return "chromium is not installed (Debian: apt-get install chromium chromium-driver; .ci/run does)"
    if not any(Path(p).exists() for p in CHROMEDRIVER) and not shutil.which("chromedriver"):
        return "chromedriver is not installed (Debian: apt-get install chromium-driver; .ci/run does)"
    return None


def open_page(html: Path, screenshot: Path | None = None, width: int = 1280, height: int = 800) -> dict:
    """Load `html`, expand every <details>, measure it, and save a full-page screenshot."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager look for a driver online
    options = webdriver.ChromeOptions()
    options.binary_location = next((p for p in CHROMIUM if Path(p).exists()), shutil.which("chromium") or "")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={width},{height}", "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver_path = next((p for p in CHROMEDRIVER if Path(p).exists()), shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    try:
        driver.set_page_load_timeout(60)
        driver.get(html.resolve().as_uri())
        closed = driver.execute_script("return window.innerWidth")
        driver.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
        result = driver.execute_script(MEASURE)
        result["innerWidth"] = closed
        result["console"] = [entry for entry in driver.get_log("browser") if entry.get("level") in ("SEVERE", "WARNING")]
        if screenshot is not None:
            full_height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(width, min(int(full_height) + 100, 30000))
            driver.save_screenshot(str(screenshot))
        return result
    finally:
        driver.quit()
