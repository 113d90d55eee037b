"""Real browser (headless Chromium + Selenium): log in, pause a tenant's sync, see it in history."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from flags.selectors import flags_explain
from tests.factories import TenantFactory, UserFactory
from tests.helpers import chromium

pytestmark = pytest.mark.browser

ARTIFACTS = Path(settings.BASE_DIR) / "artifacts"
WAIT_S = 15


@pytest.fixture
def browser():
    with chromium("--window-size=1400,1000") as driver:
        driver.implicitly_wait(0)
        yield driver


def test_admin_pauses_a_tenants_sync_and_shows_it_in_history(
    transactional_db, live_server, browser
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    tenant = TenantFactory(slug="browser-store")
    UserFactory(username="operator", password="s3cret-pw", is_superuser=True)
    wait = WebDriverWait(browser, WAIT_S)

    browser.get(f"{live_server.url}/admin/login/?next=/admin/flags/tenantflagset/")
    browser.find_element(By.NAME, "username").send_keys("operator")
    browser.find_element(By.NAME, "password").send_keys("s3cret-pw")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()

    button = wait.until(
        ec.element_to_be_clickable(
            (By.CSS_SELECTOR, 'button.flag-toggle[data-tenant="browser-store"]')
        )
    )
    assert button.text == "Pause sync"
    button.click()

    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "ul.messagelist"), "Paused"))
    row = browser.find_element(By.XPATH, "//tr[.//a[text()='browser-store']]")
    assert "PAUSED" in row.text
    assert "Resume sync" in row.text
    assert flags_explain(tenant_id=tenant.id)["syncEnabled"].value is False
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "admin-flags-paused-tenant.png"))

    browser.get(f"{live_server.url}/admin/flags/flagchange/")
    history = wait.until(ec.presence_of_element_located((By.ID, "result_list")))
    first = history.find_element(By.CSS_SELECTOR, "tbody tr")
    assert "browser-store" in first.text
    assert "syncEnabled" in first.text
    assert "(inherit: true) → false" in first.text
    assert "operator" in first.text

    shot = ARTIFACTS / "admin-flags-pause-history.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 0
