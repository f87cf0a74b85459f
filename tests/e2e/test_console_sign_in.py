"""Issue 9: signing in with a token from the chain's sign-on, and the service desk worked
with the keyboard alone (validation message next to its field, focus where the fix goes).
The harness is tests/e2e/conftest.py; screenshots go to test-artifacts/console/<test>/."""

import uuid

from mallcare_common.auth import issue_token
from tests.helpers import SIGN_ON
from tests.e2e.conftest import Console, quietly

TAB_LIMIT = 60  # more Tab presses than the desk form has stops


def test_a_sign_on_token_starts_a_session_and_a_bad_one_is_refused(console, browser):
    c = Console(browser, console)
    c.driver.get(console + "/#token=not-a-token")
    assert "invalid token" in c.el("#login-error").text
    assert "token=" not in c.driver.current_url  # gone from the address bar
    c.shot("sign-on-refused")

    token = issue_token(SIGN_ON, "E3501", "handler", ["sh-xujiahui"])
    c.driver.get(console + "/#token=" + token)
    c.el('main[data-page="queue"]')  # the handler's home page
    assert "token=" not in c.driver.current_url
    assert "E3501" in c.el("#who").text and "处理专员" in c.el("#who").text  # the role in words
    c.shot("sign-on-handler-queue")

    c.click("#logout")
    c.el('main[data-page="login"]')
    c.driver.find_element(c.By.CSS_SELECTOR, "details summary").click()  # the paste-a-token form
    c.type("#sign-on-token", issue_token(SIGN_ON, "D3001", "desk_staff", ["sh-xujiahui"]))
    c.click("#token-submit")
    c.el('main[data-page="desk"]')


def test_the_desk_form_works_from_the_keyboard_alone(console, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    c = Console(browser, console)
    c.login("D3001", "desk")
    keys = ActionChains(c.driver)
    focused = lambda: c.driver.switch_to.active_element  # noqa: E731

    def tab_to(check):
        for _ in range(TAB_LIMIT):
            keys.send_keys(Keys.TAB).perform()
            if check(focused()):
                return focused()
        raise AssertionError("Tab never reached the control")

    assert focused().get_attribute("data-path") == "mall_id"  # the form starts focused
    submit = tab_to(lambda el: el.get_attribute("id") == "desk-submit")
    submit.send_keys(Keys.ENTER)  # nothing typed yet
    c.wait.until(lambda d: quietly(lambda _: focused().get_attribute("data-path") == "description", d))
    assert focused().get_attribute("aria-invalid") == "true"
    assert c.text('[data-error-for="description"]')  # next to the field ...
    assert focused().get_attribute("aria-describedby") == c.el('[data-error-for="description"]').get_attribute(
        "id"
    )  # ... and read out with it
    c.shot("desk-keyboard-required")

    focused().send_keys("手扶梯停了十分钟，没人告知")
    keys.key_down(Keys.SHIFT)  # back up to the phone
    tab_to(lambda el: el.get_attribute("data-path") == "customer.phone")
    keys.key_up(Keys.SHIFT).perform()
    focused().send_keys(f"139{uuid.uuid4().int % 10**8:08d}")
    tab_to(lambda el: el.get_attribute("data-path") == "anger_score").send_keys("3")
    tab_to(lambda el: el.get_attribute("id") == "desk-submit").send_keys(Keys.ENTER)
    number = c.el("#complaint-number").text
    assert number.startswith("SHXJH-")
    c.wait.until(lambda d: quietly(lambda _: focused().get_attribute("id") == "ack-button", d))
    focused().send_keys(Keys.ENTER)  # "customer told"
    c.el("#ack-done")
    c.shot("desk-keyboard-registered")


def test_with_the_demo_sign_in_off_the_page_says_so_and_offers_the_sign_on(
    container_factory, rabbit_config, secrets_file, browser
):
    """Issue 23: the console as compose and Kubernetes ship it: no staff picker, and a line
    that says the demo sign-in is off, in both languages."""

    from console.service import UPSTREAM_NAMES, ConsoleService
    from tests.helpers import POLICY_DIR, free_port

    address = f"127.0.0.1:{free_port()}"
    config = {
        "AMQP_URI": rabbit_config["AMQP_URI"],
        "WEB_SERVER_ADDRESS": address,
        "MALLCARE": {
            "POLICY_DIR": str(POLICY_DIR),
            "SECRETS_FILE": secrets_file,
            "SIGN_ON_URL": "https://sso.example.com/login",
            "UPSTREAMS": {name: "http://127.0.0.1:9" for name in UPSTREAM_NAMES},
        },
    }
    container_factory(ConsoleService, config).start()
    c = Console(browser, f"http://{address}")
    c.driver.get(c.url + "/#/login")
    assert "演示登录已关闭" in c.el("#demo-off").text
    assert not c.driver.find_elements(c.By.CSS_SELECTOR, "#staff-id")  # no picker
    assert c.el("#sign-on").get_attribute("href").startswith("https://sso.example.com/login?return_to=")
    c.shot("demo-off")
    c.click("#lang")
    assert "The demo sign-in is off" in c.el("#demo-off").text
