"""The enrollment pages driven in headless Chromium (Debian's chromium and chromium-driver, through
Selenium): fill the form, upload photos, tick consent, submit, read the token, check, then erase."""

from __future__ import annotations

import shutil

import pytest

from api.app import Settings, create_app
from tests.api.server import LiveServer
from tests.conftest import facedata_path

pytestmark = pytest.mark.browser

DRIVER = shutil.which("chromedriver")
CHROMIUM = shutil.which("chromium")


@pytest.mark.facedata
@pytest.mark.skipif(
    DRIVER is None or CHROMIUM is None,
    reason="Debian's chromium and chromium-driver are not installed (make test installs them as root)",
)
def test_enroll_check_and_erase_in_a_browser(tmp_path):
    import os

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService
    from selenium.webdriver.common.by import By

    photos = sorted(facedata_path("lfw_deepfunneled", "Ana_Palacio").iterdir())[:3]
    app = create_app(str(tmp_path / "ws"), settings=Settings())
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=420,900",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        opts.add_argument(flag)
    with LiveServer(app) as srv:
        driver = webdriver.Chrome(service=DriverService(DRIVER), options=opts)
        driver.implicitly_wait(60)  # a page after a submit can take a while on a loaded machine
        driver.set_page_load_timeout(120)
        try:
            driver.get(f"{srv.url}/enroll")
            assert "consent" in driver.find_element(By.ID, "consent-text").text.lower()
            driver.find_element(By.ID, "photos").send_keys("\n".join(str(p) for p in photos))
            driver.find_element(By.ID, "consent").click()
            shot = os.environ.get("FACETRACE_SCREENSHOT")
            if shot:
                driver.save_screenshot(shot)
            driver.find_element(By.ID, "submit").click()
            subject_id = driver.find_element(By.ID, "subject-id").text
            token = driver.find_element(By.ID, "token").text
            assert len(subject_id) == 16 and len(token) >= 32
            assert app.state.service.registry.store.get_subject(subject_id)["status"] == "active"

            driver.get(f"{srv.url}/exposure")
            driver.find_element(By.ID, "subject_id").send_keys(subject_id)
            driver.find_element(By.ID, "token").send_keys(token)
            driver.find_element(By.ID, "submit").click()
            assert driver.find_element(By.ID, "count").text.startswith("0 finding(s)")

            driver.get(f"{srv.url}/erase")
            driver.find_element(By.ID, "subject_id").send_keys(subject_id)
            driver.find_element(By.ID, "token").send_keys(token)
            driver.find_element(By.ID, "submit").click()
            assert "Erased at" in driver.find_element(By.ID, "erased").text
            assert app.state.service.registry.store.get_subject(subject_id)["status"] == "erased"
        finally:
            driver.quit()
