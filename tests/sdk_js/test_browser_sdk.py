"""The JS SDK's browser bundle in real Chromium against gunicorn + a Celery worker.

The page (tests/sdk_js/page.html with sdk-js/dist/codex-ingest.min.js) is served from a second
local port, so every call is cross-origin and goes through CORS (the tenant's allowedOrigins).
One browser session walks through: events tracked offline (CDP network emulation) survive the
tab's close and are delivered once from a reopened tab; two tabs tracking at once deliver each
event once; syncEnabled flipped off and on pauses and resumes the page's SDK without a reload;
a 429 storm is ridden out with Retry-After; a page on an origin the tenant does not allow is
refused by the browser.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from django.conf import settings

from ingest.models import EnrichedEvent, Event
from tenants.scope import tenant_scope
from tests.dbutil import database_url
from tests.factories import UserFactory
from tests.helpers import chromium, encode, make_event, set_flags, wait_until
from tests.netutil import free_port
from tests.procs import gunicorn_server
from tests.signing import sign_headers

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdk-js"
BUNDLE = SDK / "dist" / "codex-ingest.min.js"
PAGE = Path(__file__).with_name("page.html")


def _bundle() -> Path:
    """The browser bundle, built when missing (npm ci + esbuild, as scripts/sdk_js_test.sh)."""
    if not BUNDLE.exists():
        if not shutil.which("npm"):
            pytest.fail("npm is missing: make test installs node and npm (scripts/sdk_js_test.sh)")
        if not (SDK / "node_modules" / ".bin" / "esbuild").exists():
            subprocess.run(["npm", "ci", "--prefer-offline", "--no-audit"], cwd=SDK, check=True)
        subprocess.run(["npm", "run", "--silent", "build"], cwd=SDK, check=True)
    return BUNDLE


@pytest.fixture
def page_server():
    """A static server on another port: the page and the bundle (another origin than the API)."""
    root = Path(tempfile.mkdtemp(prefix="codex-sdk-page-"))
    shutil.copy(PAGE, root / "index.html")
    shutil.copy(_bundle(), root / "codex-ingest.min.js")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", port), functools.partial(Quiet, directory=str(root))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield port
    server.shutdown()
    server.server_close()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def browser():
    with chromium(
        # Background tabs keep their timers: every tab's SDK stays live while another has focus.
        "--disable-background-timer-throttling",
        "--disable-renderer-backgrounding",
        "--disable-backgrounding-occluded-windows",
    ) as driver:
        driver.set_script_timeout(30)
        yield driver


@pytest.fixture
def api(transactional_db, celery_worker):
    """gunicorn (2 workers) on the test database; its wake-ups reach this run's Celery worker and
    it shares this run's flag cache, so a flag changed here is in force there within seconds."""
    env = {
        "DATABASE_URL": database_url(),
        "CODEX_ENV": "development",
        "REDIS_URL": settings.REDIS_URL,
        "CODEX_CACHE_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        "CODEX_CELERY_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
    }
    with gunicorn_server(env, workers=2) as (url, _proc):
        yield url


def _stored(tenant, prefix: str) -> list[str]:
    with tenant_scope(tenant.id):
        return list(
            Event.objects.filter(tenant_id=tenant.id, idempotency_key__startswith=prefix)
            .values_list("idempotency_key", flat=True)
            .order_by("idempotency_key")
        )


def _enriched(tenant) -> int:
    with tenant_scope(tenant.id):
        return EnrichedEvent.objects.filter(tenant_id=tenant.id).count()


def _logs(driver) -> list:
    return driver.execute_script("return window.logs")


def _status(driver) -> dict:
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "window.client.status().then(done, (e) => done({error: String(e)}));"
    )


def _track(driver, prefix: str, n: int, *, wait: bool = True) -> None:
    if wait:
        keys = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "window.trackMany(arguments[0], arguments[1]).then(done, (e) => done(String(e)));",
            prefix,
            n,
        )
        assert len(keys) == n, keys
    else:
        driver.execute_script("window.trackMany(arguments[0], arguments[1]);", prefix, n)


def _open(driver, url: str, *, blocked: str | None = None) -> str:
    """A new tab on `url`; `blocked`: a URL prefix this tab cannot reach (the API "down")."""
    driver.switch_to.new_window("tab")
    driver.execute_cdp_cmd("Network.enable", {})
    _block(driver, blocked)
    driver.get(url)
    wait_until(
        lambda: (
            driver.execute_script("return document.getElementById('state').textContent")
            == "started"
        ),
        timeout=20,
        interval=0.1,
        message="the page's SDK to start",
    )
    return driver.current_window_handle


def _block(driver, prefix: str | None) -> None:
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": [f"{prefix}*"] if prefix else []})


def _network(driver, *, offline: bool) -> None:
    driver.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )


def _admin_toggle(driver, admin: str, slug: str, label: str) -> None:
    """In a tab of its own, an operator clicks the tenant's Pause/Resume sync in the admin.

    The admin is this test's live server: same database, and the flag cache it invalidates is
    the one gunicorn reads (CODEX_CACHE_PREFIX), as two web processes of one deployment.
    """
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    page_tab = driver.current_window_handle
    driver.switch_to.new_window("tab")
    driver.get(f"{admin}/admin/login/?next=/admin/flags/tenantflagset/")
    wait = WebDriverWait(driver, 15)
    if driver.find_elements(By.NAME, "username"):
        driver.find_element(By.NAME, "username").send_keys("operator")
        driver.find_element(By.NAME, "password").send_keys("s3cret-pw")
        driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
        wait.until(ec.presence_of_element_located((By.ID, "content")))
    driver.get(f"{admin}/admin/flags/tenantflagset/")
    try:
        button = wait.until(
            ec.element_to_be_clickable(
                (By.CSS_SELECTOR, f'button.flag-toggle[data-tenant="{slug}"]')
            )
        )
    except Exception:
        raise AssertionError(driver.current_url + driver.page_source[:3000]) from None
    assert button.text == label
    button.click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "ul.messagelist")))
    driver.close()
    driver.switch_to.window(page_tab)


def test_the_browser_sdk_delivers_every_event_once_offline_tabs_pause_and_429(
    api, page_server, browser, signed, live_server
):
    tenant, key = signed.tenant, signed.key
    UserFactory(username="operator", password="s3cret-pw", is_superuser=True)
    origin = f"http://127.0.0.1:{page_server}"
    set_flags(tenant, allowedOrigins=[origin], minIntervalSec=5)
    query = urlencode({"api": api, "keyId": key.key_id, "secret": key.secret})
    page = f"{origin}/index.html?{query}"
    figures: dict[str, object] = {}
    started = time.monotonic()

    # 1. Offline: tracked into IndexedDB, the tab closed, reopened, back online.
    tab_a = _open(browser, page)
    assert _status(browser)["configSource"] == "server", _logs(browser)
    _network(browser, offline=True)
    _track(browser, "off", 30)
    time.sleep(1.0)
    status = _status(browser)
    assert status["queueDepth"] == 30
    assert _stored(tenant, "off-") == []
    blank = browser.current_window_handle
    browser.switch_to.new_window("tab")
    blank = browser.current_window_handle
    browser.switch_to.window(tab_a)
    browser.close()  # pagehide while offline: the keepalive request fails, the queue keeps all 30
    browser.switch_to.window(blank)
    # The page loads again, the API still unreachable from it: the 30 events are in IndexedDB.
    tab_b = _open(browser, page, blocked=api)
    assert _status(browser)["queueDepth"] == 30
    assert _stored(tenant, "off-") == []
    _block(browser, None)  # back online
    browser.execute_script("window.dispatchEvent(new Event('online'))")
    waiting_since = time.monotonic()
    wait_until(
        lambda: len(_stored(tenant, "off-")) == 30,
        timeout=30,
        interval=0.1,
        message="the offline events",
    )
    took = time.monotonic() - waiting_since
    assert _stored(tenant, "off-") == sorted(f"off-{i}" for i in range(30))
    wait_until(
        lambda: _status(browser)["queueDepth"] == 0,
        timeout=10,
        interval=0.1,
        message="the queue to empty",
    )
    counters = _status(browser)["counters"]
    assert counters["eventsAccepted"] == 30
    assert counters["eventsDuplicate"] == 0
    wait_until(
        lambda: _enriched(tenant) == 30,
        timeout=30,
        interval=0.1,
        message="enrichment of the offline events",
    )
    fates = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "Promise.all([window.client.lookup('off-7'), window.client.lookup('no/such key')])"
        ".then(done, (e) => done(String(e)));"
    )
    assert fates[0]["status"] == "enriched", fates  # the lookup, signed and CORS-read too
    assert fates[1] is None
    figures["offline"] = {
        "tracked": 30,
        "delivered": 30,
        "duplicates": 0,
        "online_to_stored_s": round(took, 1),
    }

    # 2. Two tabs tracking at once: each event once.
    tab_c = _open(browser, page)
    _track(browser, "tab-c", 50, wait=False)
    browser.switch_to.window(tab_b)
    _track(browser, "tab-b", 50, wait=False)
    wait_until(
        lambda: len(_stored(tenant, "tab-")) == 100,
        timeout=40,
        interval=0.1,
        message="both tabs' events to be delivered",
    )
    time.sleep(0.5)
    both = [_status(browser)]
    browser.switch_to.window(tab_c)
    both.append(_status(browser))
    accepted = sum(s["counters"]["eventsAccepted"] for s in both) - 30
    duplicates = sum(s["counters"]["eventsDuplicate"] for s in both)
    assert accepted == 100, both
    assert duplicates == 0, both
    figures["two_tabs"] = {"tracked": 100, "accepted": accepted, "duplicates": duplicates}
    browser.close()
    browser.switch_to.window(tab_b)

    # 3. An operator pauses the tenant's sync in the admin: the page stops sending without a
    # reload; resumed in the admin: it sends again.
    _admin_toggle(browser, live_server.url, tenant.slug, "Pause sync")
    wait_until(
        lambda: _status(browser)["paused"],
        timeout=15,
        interval=0.1,
        message="the page's SDK to see syncEnabled=false",
    )
    _track(browser, "paused", 10)
    time.sleep(6.5)  # longer than minIntervalSec
    assert _stored(tenant, "paused-") == []
    assert _status(browser)["queueDepth"] == 10
    _admin_toggle(browser, live_server.url, tenant.slug, "Resume sync")
    waiting_since = time.monotonic()
    wait_until(
        lambda: len(_stored(tenant, "paused-")) == 10,
        timeout=20,
        interval=0.1,
        message="sync to resume",
    )
    resumed = time.monotonic() - waiting_since
    figures["pause"] = {"held": 10, "delivered_after_resume_s": round(resumed, 1)}

    # 4. A 429 storm: another client spends the tenant's quota; the page waits Retry-After.
    set_flags(tenant, ingestRatePerSec=2)
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(timeout=5) as http:
            while not stop.is_set():
                body = encode(make_event())
                headers = sign_headers(key.key_id, key.secret, body)
                http.post(f"{api}/v1/events", content=body, headers=headers)

    threads = [threading.Thread(target=hammer, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(4)  # the flag is in force everywhere
        _track(browser, "storm", 20)
        wait_until(
            lambda: _status(browser)["counters"]["rateLimited"] > 0,
            timeout=20,
            interval=0.1,
            message="a 429 for the page",
        )
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    set_flags(tenant, ingestRatePerSec=50)
    wait_until(
        lambda: len(_stored(tenant, "storm-")) == 20,
        timeout=30,
        interval=0.1,
        message="the storm's events",
    )
    status = _status(browser)
    assert status["deadLetters"] == 0
    figures["storm"] = {
        "tracked": 20,
        "delivered": 20,
        "rate_limited": status["counters"]["rateLimited"],
    }

    # 5. A page on an origin the tenant does not allow: the browser refuses its calls.
    other = page.replace("127.0.0.1", "localhost", 1)
    browser.switch_to.new_window("tab")
    browser.get(other)
    wait_until(
        lambda: any("/config failed" in m for _, m in browser.execute_script("return window.logs")),
        timeout=15,
        interval=0.1,
        message="the refused /config call",
    )
    assert _status(browser)["configSource"] == "default"
    refused_tab = browser.current_window_handle
    browser.switch_to.window(tab_b)
    browser.close()
    browser.switch_to.window(refused_tab)

    # 6. The page going away flushes with fetch keepalive: events tracked just after a sync (so
    # no sync is due for minIntervalSec) arrive although no page is left to send them. (Navigated
    # away: chromedriver's window close skips the page's unload steps, a user's close does not.)
    _open(browser, page)
    _track(browser, "first", 1)
    wait_until(
        lambda: _status(browser)["queueDepth"] == 0,
        timeout=10,
        interval=0.1,
        message="the first sync",
    )
    time.sleep(1.2)  # past any rate-limit window the first answer may have closed (RateLimit r=0)
    _track(browser, "hide", 5)
    assert _status(browser)["queueDepth"] == 5
    browser.get("about:blank")  # the page goes away (pagehide), as on a close or a navigation
    browser.get(origin + "/index.html")
    note = browser.execute_script("return localStorage.getItem('pagehide')")
    browser.close()
    browser.switch_to.window(refused_tab)
    waiting_since = time.monotonic()
    wait_until(
        lambda: len(_stored(tenant, "hide-")) == 5,
        timeout=10,
        interval=0.1,
        message=f"keepalive flush {note}",
    )
    flushed = time.monotonic() - waiting_since
    figures["close_flush"] = {"tracked": 5, "delivered": 5, "after_close_s": round(flushed, 1)}

    total = 30 + 100 + 10 + 20 + 1 + 5
    with tenant_scope(tenant.id):
        assert Event.objects.filter(tenant_id=tenant.id, source="browser").count() == total
    figures["seconds"] = round(time.monotonic() - started, 1)
    print("browser SDK figures:", figures)
