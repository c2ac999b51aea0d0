"""A real browser (headless Chromium) signs in, picks categories on the consent page and lands on the app with a code.

Needs Debian's ``chromium`` and ``chromium-driver`` packages and the ``selenium`` test extra;
skips, saying which is missing, otherwise (under CI=true a missing browser is a failure:
.ci/run installs it).
"""

from __future__ import annotations

import os
import shutil
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from support.smart_flow import PATIENT_USER, LiveServer, auth_params, exchange, make_app, make_settings, pkce, register

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
_MISSING = "Chromium not found: apt-get install -y chromium chromium-driver"
if not (CHROMIUM and CHROMEDRIVER) and os.environ.get("CI") == "true":
    pytest.fail(f"{_MISSING} (CI=true: the browser test must run, not skip)", pytrace=False)
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason=_MISSING)


@pytest.fixture(scope="module")
def live(demo_path, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("smart-browser")
    server = LiveServer(lambda base: make_app(make_settings(demo_path, tmp, base_url=base)))
    yield server.app, server
    server.close()


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _submit(browser, element_id: str) -> None:
    """Click and wait until the next page has replaced this one."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    button = browser.find_element(By.ID, element_id)
    button.click()
    # While the old document is being torn down Chromium may answer a probe of the button with
    # an inspector error instead of "stale element"; that is the navigation in progress, so poll on.
    wait = WebDriverWait(browser, 20, ignored_exceptions=(WebDriverException,))
    wait.until(expected_conditions.staleness_of(button))
    wait.until(lambda driver: driver.execute_script("return document.readyState") == "complete")


def test_browser_sign_in_and_granular_consent(live, browser):
    from selenium.webdriver.common.by import By

    app, server = live
    # The redirect URI is the server's own smart-style document: any page that loads will do.
    redirect = server.base + "/auth/smart-style.json"
    registered = register(app, "public", redirect_uris=[redirect])[0]
    verifier, challenge = pkce()
    params = auth_params(
        registered.client_id,
        challenge,
        "launch/patient openid fhirUser offline_access patient/Observation.rs patient/Patient.rs",
        redirect_uri=redirect,
        aud=server.base,
    )
    browser.get(server.base + "/auth/authorize?" + urlencode(params))
    assert "Sign in" in browser.title
    browser.find_element(By.ID, "username").send_keys(PATIENT_USER[0])
    browser.find_element(By.ID, "password").send_keys("wrong password")
    _submit(browser, "sign-in")
    assert "Unknown user name or wrong password." in browser.page_source
    browser.find_element(By.ID, "username").send_keys(PATIENT_USER[0])
    browser.find_element(By.ID, "password").send_keys(PATIENT_USER[1])
    _submit(browser, "sign-in")
    assert "Allow" in browser.title
    assert "Read and search Observation records for the patient in context" in browser.page_source
    # untick whole-type Observation access, tick laboratory results only
    browser.find_element(By.CSS_SELECTOR, 'input[value="patient/Observation.rs"]').click()
    laboratory = "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
    browser.find_element(By.CSS_SELECTOR, f'input[value="{laboratory}"]').click()
    _submit(browser, "allow")
    landed = urlsplit(browser.current_url)
    assert f"{landed.scheme}://{landed.netloc}{landed.path}" == redirect
    answer = {key: values[0] for key, values in parse_qs(landed.query).items()}
    assert answer["state"] == params["state"]
    client = app.test_client()
    token = exchange(client, answer["code"], verifier, registered.client_id, redirect_uri=redirect).get_json()
    granted = token["scope"].split()
    assert laboratory in granted and "patient/Observation.rs" not in granted and "patient/Patient.rs" in granted
    assert token["patient"] == PATIENT_USER[2]
