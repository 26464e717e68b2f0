"""The served page in a real browser: upload a photo of each class, read the labels, see the heatmap."""

import subprocess
import time
import urllib.request

import numpy as np
import pytest
from browser import browser
from conftest import free_port, zoo_command, zoo_env
from frozen_plugin import install_frozen
from imagefactory import make_image_folder, write_images

import catdog_zoo

pytestmark = pytest.mark.slow


@pytest.fixture
def server(site, tmp_path):
    pytest.importorskip("starlette")
    install_frozen(site, "frozen_page", size=32, filters=16, seed=7)
    data = make_image_folder(tmp_path / "data", n_train=30, n_val=20, size=32)
    run = catdog_zoo.train("frozen_page", data=str(data), epochs=3, batch_size=8, learning_rate=0.05,
                           run_dir=str(tmp_path / "run"),
                           quiet=True).run_dir
    port = free_port()
    proc = subprocess.Popen(zoo_command("serve", run, "--port", port), env=zoo_env({"TF_CPP_MIN_LOG_LEVEL": "3"}, site),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 90
    while time.time() < deadline and proc.poll() is None:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).status == 200:
                break
        except OSError:
            time.sleep(0.3)
    if proc.poll() is not None:
        pytest.fail(proc.stderr.read()[-2000:])
    yield f"http://127.0.0.1:{port}/", data, tmp_path
    proc.terminate()
    proc.wait(timeout=10)


def test_the_page_labels_a_photo_of_each_class_and_shows_the_heatmap(server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, data, where = server
    write_images(where / "other", 2, 1, 32, np.random.default_rng(1))  # a colour of neither class
    cat, dog, other = where / "cat.jpg", where / "dog.jpg", where / "other.jpg"
    for source, target in ((sorted((data / "validation" / "cats").iterdir())[0], cat),
                           (sorted((data / "validation" / "dogs").iterdir())[0], dog),
                           (next((where / "other").iterdir()), other)):
        target.write_bytes(source.read_bytes())
    page = browser(width=390, height=844)  # a phone-width screen
    try:
        page.get(url)
        WebDriverWait(page, 20).until(lambda p: "cats, dogs" in p.find_element(By.ID, "facts").text)
        assert not page.find_element(By.ID, "token").is_displayed()  # no token asked for: none needed
        assert page.execute_script("return document.documentElement.scrollWidth") <= 390  # no sideways scrolling
        chooser = page.find_element(By.ID, "files")
        chooser.send_keys("\n".join(str(p) for p in (cat, dog, other)))
        WebDriverWait(page, 30).until(lambda p: len(p.find_elements(By.CSS_SELECTOR, "#results .card")) == 3)
        labels = {c.find_element(By.CLASS_NAME, "name").text.split(" ")[0]: c.find_element(By.CLASS_NAME, "label").text
                  for c in page.find_elements(By.CSS_SELECTOR, "#results .card")}
        assert labels[cat.name] == "cats" and labels[dog.name] == "dogs" and labels[other.name] == "unknown"
        page.find_element(By.ID, "explain").click()
        chooser.send_keys(str(cat))
        WebDriverWait(page, 30).until(lambda p: len(p.find_elements(By.CSS_SELECTOR, "#results .card")) == 4)
        newest = page.find_elements(By.CSS_SELECTOR, "#results .card img")[0]
        assert newest.get_attribute("src").startswith("data:image/png;base64,")  # the photo under its heatmap
        assert page.execute_script("return arguments[0].naturalWidth", newest) == 32
        page.save_screenshot(str(tmp_path / "page.png"))
        assert (tmp_path / "page.png").stat().st_size > 10_000
        # keyboard: the drop zone takes focus and is labelled for the file input
        assert page.find_element(By.ID, "drop").get_attribute("tabindex") == "0"
    finally:
        page.quit()
