"""Signs in to the dashboard in headless Chromium, sees the users page, creates and imports users through the forms.

Prints 'N passed, N failed' so CI can read the outcome."""
import json
import os
import sqlite3
import sys
import urllib.request
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

BASE = os.environ["BASE_URL"]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHOTS = os.environ.get("SCREENSHOT_DIR", tempfile.gettempdir())

options = webdriver.ChromeOptions()
for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"):
    options.add_argument(flag)
options.binary_location = "/usr/bin/chromium"
options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
driver.set_page_load_timeout(30)

passed, failed = 0, 0


def check(name, condition):
    """`condition` is a callable re-tried until it holds (pages load after a click) or 10 s pass."""
    global passed, failed
    try:
        WebDriverWait(driver, 10).until(lambda _: condition())
        ok = True
    except Exception:
        ok = False
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} (at {driver.current_url})")


def policy_violations():
    """Console messages of the pages seen since the last call that report a blocked script or style."""
    return [entry["message"] for entry in driver.get_log("browser") if "Content Security Policy" in entry["message"]]


try:
    driver.get(BASE + "/users")
    check("signed-out visitors are sent to sign in", lambda: driver.current_url.endswith("/login"))

    driver.find_element(By.NAME, "email").send_keys("admin@browser.test")
    driver.find_element(By.NAME, "password").send_keys("wrong-password")
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    check("a wrong password shows an error", lambda: "Invalid email or password" in driver.page_source)

    driver.find_element(By.NAME, "email").clear()
    driver.find_element(By.NAME, "email").send_keys("admin@browser.test")
    driver.find_element(By.NAME, "password").send_keys("browser-pass-1")
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    check("signing in lands on the dashboard", lambda: driver.current_url.endswith("/dashboard"))

    driver.find_element(By.LINK_TEXT, "Users").click()
    check("the users page opens from the navigation", lambda: driver.find_element(By.TAG_NAME, "h1").text == "Users")

    driver.find_element(By.LINK_TEXT, "New user").click()
    driver.find_element(By.NAME, "firstName").send_keys("Browser")
    driver.find_element(By.NAME, "lastName").send_keys("Person")
    driver.find_element(By.NAME, "email").send_keys("browser.person@browser.test")
    driver.find_element(By.NAME, "department").send_keys("QA")
    driver.find_element(By.NAME, "password").send_keys("learner-pass-1")
    driver.find_element(By.CSS_SELECTOR, "form.form button[type=submit]").click()
    check("a created user appears in the list", lambda: "browser.person@browser.test" in driver.page_source)
    check("the creation notice is shown", lambda: "User created." in driver.page_source)

    driver.find_element(By.NAME, "search").send_keys("browser.person")
    driver.find_element(By.CSS_SELECTOR, "form[role=search] button").click()
    check("search narrows the list", lambda: len(driver.find_elements(By.CSS_SELECTOR, "table.list tbody tr")) == 1)
    driver.save_screenshot(os.path.join(SHOTS, "users.png"))

    driver.get(BASE + "/users/import")
    driver.find_element(By.NAME, "csv").send_keys(
        "first_name,last_name,email\nImported,One,imported.one@browser.test\n,Missing,not-an-email\n")
    driver.find_element(By.CSS_SELECTOR, "form.form button[type=submit]").click()
    check("the import reports imported and rejected rows",
          lambda: "1 imported, 1 rejected" in driver.find_element(By.ID, "import-report").text)

    # An administrator launches a campaign of the built-in phishing module for everyone.
    driver.get(BASE + "/campaigns/new")
    driver.find_element(By.NAME, "name").send_keys("Browser campaign")
    driver.find_element(By.XPATH, "//label[contains(., 'Spotting phishing email')]/input").click()
    driver.execute_script("document.querySelector('input[name=due]').value = '2099-12-31'")
    driver.find_element(By.CSS_SELECTOR, "form.form button[type=submit]").click()
    check("a launched campaign shows its people", lambda: "Campaign created." in driver.page_source and "people" in driver.page_source)

    driver.find_element(By.CSS_SELECTOR, "form.signout button").click()
    check("signing out returns to the sign-in page", lambda: driver.current_url.endswith("/login"))
    driver.get(BASE + "/users")
    check("after signing out the users page needs a sign-in again", lambda: driver.current_url.endswith("/login"))

    # The learner signs in, reads every lesson, passes the quiz and opens the certificate.
    driver.find_element(By.NAME, "email").send_keys("browser.person@browser.test")
    driver.find_element(By.NAME, "password").send_keys("learner-pass-1")
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    check("the learner lands on the dashboard", lambda: driver.current_url.endswith("/dashboard"))
    driver.find_element(By.LINK_TEXT, "Learn").click()
    check("the learner sees the assignment", lambda: "Spotting phishing email" in driver.page_source)
    driver.find_element(By.CSS_SELECTOR, "a.assignment").click()
    for position in (1, 2, 3):
        button = driver.find_element(By.XPATH, f"//button[contains(., 'Mark lesson {position} as done')]")
        button.click()
        check(f"lesson {position} is marked done",
              lambda: f"Mark lesson {position} as done" not in driver.page_source and "Lesson marked as done." in driver.page_source)
    content = json.load(open(os.path.join(ROOT, "Resources/Content/modules/phishing-and-email.json")))
    for number, question in enumerate(content["questions"], start=1):
        for index in question["correct"]:
            driver.find_element(By.XPATH, f"//fieldset[legend[starts-with(., '{number}.')]]//input[@value='{index}']").click()
    driver.find_element(By.XPATH, "//button[contains(., 'Submit answers')]").click()
    check("the quiz is passed with full marks", lambda: "Passed" in driver.find_element(By.ID, "quiz-result").text
          and "100%" in driver.find_element(By.ID, "quiz-result").text)
    driver.find_element(By.LINK_TEXT, "View your certificate").click()
    check("the certificate names the learner and carries a code",
          lambda: "Browser Person" in driver.page_source and driver.find_element(By.ID, "certificate-code").text.count("-") == 3)
    driver.save_screenshot(os.path.join(SHOTS, "certificate.png"))
    violations = policy_violations()
    check("no page so far broke its Content-Security-Policy", lambda: not violations)
    for message in violations[:5]:
        print("     " + message)

    # A phishing simulation reaches the learner: the tracked link opens the landing page (sandboxed by CSP), the form
    # posts back, and the teachable moment appears. Headless Chromium is recorded, flagged as an automated client.
    def api(method, path, body=None, token=None):
        request = urllib.request.Request(BASE + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})})
        with urllib.request.urlopen(request) as response:
            return json.load(response)
    admin = api("POST", "/api/auth/login", {"email": "admin@browser.test", "password": "browser-pass-1"})["data"]["token"]
    profile = api("POST", "/api/v1/phishing/sending-profiles", {"name": "Unreachable", "host": "127.0.0.1", "port": 9,
                  "security": "none", "envelope_from": "sim@browser.test"}, admin)["data"]["id"]
    template = api("GET", "/api/v1/phishing/templates?category=credentials&per_page=1", token=admin)["data"][0]["id"]
    campaign = api("POST", "/api/v1/phishing/campaigns", {"name": "Browser phish", "template_ids": [template],
                   "sending_profile_id": profile, "tracking_url": BASE}, admin)["data"]["id"]
    api("POST", f"/api/v1/phishing/campaigns/{campaign}/send", token=admin)
    database = sqlite3.connect(os.path.join(os.environ["WORK_DIR"], "bulwark.sqlite"))
    token = database.execute("select token from phishing_simulations where email = 'browser.person@browser.test'").fetchone()[0]
    database.close()
    driver.get(BASE + f"/api/phishing/track/click/{token}")
    check("the tracked link lands on the campaign's landing page", lambda: f"/phish/{token}" in driver.current_url)
    driver.find_element(By.NAME, "email").send_keys("browser.person@browser.test")
    driver.find_element(By.NAME, "password").send_keys("not-stored")
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    check("submitting shows the teachable moment", lambda: "This was a simulation" in driver.page_source)
    results = api("GET", f"/api/v1/phishing/campaigns/{campaign}/results", token=admin)["data"]
    simulation = next(row["id"] for row in results if row["email"] == "browser.person@browser.test")
    timeline = api("GET", f"/api/v1/phishing/simulations/{simulation}", token=admin)["data"]["timeline"]
    kinds = [event["kind"] for event in timeline if event["kind"] in ("click", "submit")]
    check("the click and the submission are in the timeline, flagged as automated",
          lambda: kinds == ["click", "submit"] and all(event["flagged"] for event in timeline if event["kind"] in ("click", "submit")))
finally:
    driver.quit()

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
