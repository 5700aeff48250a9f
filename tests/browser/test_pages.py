"""What a person sees in the web UI, in headless Chromium against a real kiln-server."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from conftest import SERVER, api, kiln, screenshot
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def sign_in(driver, *, username: str | None = None, password: str | None = None, token: str | None = None):
    driver.get(SERVER + "/sign-in")
    if token:
        driver.find_element(By.NAME, "token").send_keys(token)
    else:
        driver.find_element(By.NAME, "username").send_keys(username)
        driver.find_element(By.NAME, "password").send_keys(password)
    navigate(driver, driver.find_element(By.CSS_SELECTOR, "form.stacked button[type=submit]"))


def navigate(driver, element) -> None:
    """Clicks a link or a submit button and waits until the next page has replaced this one."""
    page = driver.find_element(By.TAG_NAME, "html")
    element.click()

    def replaced(_driver) -> bool:
        # Chromium reports the old page's element as stale, or, mid-navigation, as a node that "does
        # not belong to the document": either way this page is gone.
        try:
            page.is_enabled()
            return False
        except WebDriverException:
            return True

    WebDriverWait(driver, 10).until(replaced)


def signed_in_as(driver) -> str | None:
    names = driver.find_elements(By.CSS_SELECTOR, ".who strong")
    return names[0].text if names else None


def browser_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def status_of(path: str, cookie: str | None = None) -> tuple[int, str]:
    """The status and the URL finally answered (after redirects)."""
    request = urllib.request.Request(SERVER + path)
    if cookie:
        request.add_header("Cookie", cookie)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.url
    except urllib.error.HTTPError as e:
        return e.code, e.url


def test_anonymous_visitors_browse_public_models(registry, browser):
    browser.get(SERVER + "/")
    links = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "table a[href^='/models/']")]
    assert "acme/open" in links
    assert "acme/secret" not in links, "a private model is listed to an anonymous visitor"
    screenshot(browser, "models")
    navigate(browser, browser.find_element(By.LINK_TEXT, "acme/open"))
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("acme/open")
    assert "kiln pull acme/open:1.1.0" in browser.page_source
    history = browser.find_element(By.CSS_SELECTOR, "article.alias table")
    assert "1.0.0" in history.text and "admin" in history.text
    screenshot(browser, "model")


def test_a_private_model_is_invisible_to_anonymous_visitors_and_other_namespaces(registry, browser):
    for path in ("/models/acme/secret", "/models/acme/secret/versions/1"):
        assert status_of(path)[0] == 404, path
    sign_in(browser, username="bob", password=registry["password"])
    assert signed_in_as(browser) == "bob"
    browser.get(SERVER + "/?q=secret")
    assert "acme/secret" not in browser.page_source
    browser.get(SERVER + "/models/acme/secret")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Not found"
    # alice, a member of acme, sees it.
    browser.delete_all_cookies()
    sign_in(browser, username="alice", password=registry["password"])
    browser.get(SERVER + "/models/acme/secret")
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("acme/secret")


def test_sign_in_with_a_password_or_a_token_and_sign_out(registry, browser):
    sign_in(browser, username="alice", password="wrong password!")
    assert "wrong user name or password" in browser.find_element(By.CSS_SELECTOR, ".error").text
    assert signed_in_as(browser) is None
    screenshot(browser, "sign-in")
    sign_in(browser, token=registry["alice_token"])
    assert signed_in_as(browser) == "alice"
    cookie = browser.get_cookie("kiln_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    navigate(browser, browser.find_element(By.CSS_SELECTOR, ".who button"))
    assert signed_in_as(browser) is None
    # The signed-out session's cookie names nothing any more, even if someone kept it.
    assert status_of("/tokens", f"kiln_session={cookie['value']}")[1].endswith("/sign-in")
    browser.add_cookie({"name": "kiln_session", "value": cookie["value"], "path": "/"})
    browser.get(SERVER + "/")
    assert signed_in_as(browser) is None
    sign_in(browser, username="alice", password=registry["password"])
    assert signed_in_as(browser) == "alice"


def test_search_filters_and_pages(registry, browser):
    browser.get(SERVER + "/?q=page-0")
    names = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "table a[href^='/models/']")]
    assert names == [], "page-* models are private: nobody signed in sees them"
    sign_in(browser, username="alice", password=registry["password"])
    seen = []
    browser.get(SERVER + "/?q=page-0&limit=2")
    while True:
        seen += [a.text for a in browser.find_elements(By.CSS_SELECTOR, "table a[href^='/models/']")]
        nexts = browser.find_elements(By.CSS_SELECTOR, "a[rel=next]")
        if not nexts:
            break
        navigate(browser, nexts[0])
    assert seen == [f"acme/page-{i:02d}" for i in range(5)]
    browser.get(SERVER + "/?tag=demo")
    assert [a.text for a in browser.find_elements(By.CSS_SELECTOR, "table a[href^='/models/']")] == ["acme/open"]


def test_the_version_page_shows_variants_and_charts_that_match_the_api(registry, browser):
    browser.get(SERVER + "/models/acme/open/versions/1.0.0")
    table = browser.find_element(By.ID, "variants-table")
    _, detail = api("GET", "/api/v1/models/acme/open/versions/1.0.0")
    for variant in detail["variants"]:
        assert variant["name"] in table.text
    points = browser.find_elements(By.CSS_SELECTOR, "svg#latency-p50 circle.point")
    expected = {
        (v["name"], b["device"], b["batch_size"]): b["p50_ms"]
        for v in detail["variants"]
        for b in v["benchmarks"]
    }
    assert expected, "the embedded runner measured nothing"
    drawn = {
        (p.get_attribute("data-variant"), p.get_attribute("data-device"), int(p.get_attribute("data-batch"))): float(
            p.get_attribute("data-p50")
        )
        for p in points
    }
    assert drawn == expected
    assert "kiln verify acme/open:1.0.0" in browser.page_source
    screenshot(browser, "version")


def test_moving_an_alias_in_the_page_publishes_the_next_manifest(registry, browser):
    before = json.loads(kiln("verify", "acme/open@production", "--json"))["manifest"]
    sign_in(browser, username="alice", password=registry["password"])
    browser.get(SERVER + "/models/acme/open")
    form = browser.find_element(By.CSS_SELECTOR, "form[action$='/aliases']")
    form.find_element(By.NAME, "alias").send_keys("production")
    form.find_element(By.CSS_SELECTOR, "select[name=version] option[value='1.1.0']").click()
    navigate(browser, form.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    # The confirmation says what the alias names now and what it will name.
    assert "It names 1.0.0 now" in browser.find_element(By.TAG_NAME, "main").text.replace("\n", " ")
    screenshot(browser, "confirm-alias")
    navigate(browser, browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]"))
    after = json.loads(kiln("verify", "acme/open@production", "--json"))["manifest"]
    assert after["version"] == "1.1.0" and after["sequence"] == before["sequence"] + 1, after


def test_a_form_without_its_csrf_token_is_refused(registry, browser):
    sign_in(browser, username="alice", password=registry["password"])
    session = browser.get_cookie("kiln_session")["value"]
    _, before = api("GET", "/api/v1/models/acme/open/aliases")
    body = urllib.parse.urlencode({"alias": "production", "version": "1.0.0", "confirmed": "yes"}).encode()
    for csrf in ("", "forged"):
        data = body + (f"&csrf={csrf}".encode() if csrf else b"")
        request = urllib.request.Request(SERVER + "/models/acme/open/aliases", data=data, method="POST")
        request.add_header("Cookie", f"kiln_session={session}")
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            urllib.request.urlopen(request)
            raise AssertionError("a form without the session's CSRF token was accepted")
        except urllib.error.HTTPError as e:
            assert e.code == 403, e.code
    _, after = api("GET", "/api/v1/models/acme/open/aliases")
    assert after == before, "a refused form changed an alias"


def test_hostile_markup_in_a_description_and_card_stays_inert(registry, browser):
    browser.get(SERVER + "/models/acme/open")
    assert browser.title != "pwned"
    main = browser.find_element(By.TAG_NAME, "main")
    assert main.find_elements(By.TAG_NAME, "script") == []
    for link in main.find_elements(By.TAG_NAME, "a"):
        href = (link.get_attribute("href") or "").lower()
        assert not href.startswith("javascript:"), href
        assert link.get_attribute("onclick") is None
    assert "<script>console.error('description ran')</script>" in main.text, "the description is shown as text"
    assert main.find_elements(By.CSS_SELECTOR, ".markdown table"), "the card's Markdown is rendered"
    # Following the card's (defused) links runs nothing either.
    for link in main.find_elements(By.CSS_SELECTOR, ".markdown a"):
        link.click()
    assert not [e for e in browser_errors(browser) if "ran" in e], browser_errors(browser)


def test_security_headers_on_every_page(registry):
    for path in ("/", "/models/acme/open", "/models/acme/open/versions/1.0.0", "/sign-in"):
        with urllib.request.urlopen(SERVER + path) as response:
            headers = response.headers
            csp = headers["Content-Security-Policy"]
            assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp, csp
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert headers["Referrer-Policy"]


def test_pages_fit_a_phone(registry, browser):
    browser.set_window_size(375, 800)
    for path in ("/", "/models/acme/open", "/models/acme/open/versions/1.0.0"):
        browser.get(SERVER + path)
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 375, f"{path} is {width} px wide at 375"
    screenshot(browser, "version-phone")
