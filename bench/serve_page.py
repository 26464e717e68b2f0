#!/usr/bin/env python
"""A screenshot of the served page with real photos: a cat, a dog and something else, heatmaps on.

    KERAS_HOME=<seeded cache> python bench/serve_page.py RUN_DIR [--out bench-runs/serve/page.png]
        [--width 1100] [--photos cat.jpg dog.jpg other.jpg]

Starts ``catdog-zoo serve RUN_DIR``, opens the page in the system Chromium (headless, tests/browser.py),
chooses the photos (by default the first cat and dog of the run's test split and a photo of ../shared's
other_things), ticks "show where it looked", and saves the page. Prints the labels the page shows.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--out", type=Path, default=Path("bench-runs/serve/page.png"))
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--photos", nargs="*", type=Path)
    args = parser.parse_args()
    from browser import browser
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from catdog_zoo.data.prepare import load_splits
    from catdog_zoo.runs.record import read_run

    config, _ = read_run(args.run)
    test = load_splits(config).test
    photos = args.photos or [next(p for p, y in zip(test.paths, test.labels) if y == 0),
                             next(p for p, y in zip(test.paths, test.labels) if y == 1),
                             sorted((ROOT.parent / "shared" / "data" / "other_things").iterdir())[7]]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "catdog_zoo", "serve", str(args.run), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.3)
        page = browser(width=args.width, height=1000)
        try:
            page.get(f"http://127.0.0.1:{port}/")
            WebDriverWait(page, 30).until(lambda p: p.find_element(By.ID, "facts").text)
            page.find_element(By.ID, "explain").click()
            page.find_element(By.ID, "files").send_keys("\n".join(str(p) for p in photos))
            WebDriverWait(page, 60).until(lambda p: len(p.find_elements(By.CSS_SELECTOR, "#results .card")) == len(photos))
            for card in page.find_elements(By.CSS_SELECTOR, "#results .card"):
                print(card.find_element(By.CLASS_NAME, "label").text, "|", card.find_element(By.CLASS_NAME, "name").text)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.set_window_size(args.width, 1400)
            page.save_screenshot(str(args.out))
            print(f"Saved {args.out}")
        finally:
            page.quit()
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
