"""Steps for the web console: the real console process, looked at and used through headless Chromium (Playwright).

Chromium is Debian's (``make test`` installs it); Playwright drives it through ``executable_path``, so
no browser is downloaded. Screenshots of every scenario's end go to the run's log directory, and to
``$CONSOLE_SCREENSHOTS`` when it is set (the README's come from there).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path

from behave import given, then, when
from behave.runner import Context
from playwright.sync_api import Locator, Page, expect, sync_playwright
from support.processes import Program

from testing.harness import csms_env, gateway_env, topics_env

CONSOLE_GATEWAY_PORT, CONSOLE_GATEWAY_STATUS_PORT, CONSOLE_CSMS_STATUS_PORT, CONSOLE_PORT = 19600, 19609, 19619, 19680
WAIT_MS = 30_000
MILLISECONDS = re.compile(r"^\d+ ms$")
ONLINE = re.compile(r"\bonline\b")
THREE_OR_MORE = re.compile(r"^([3-9]|\d\d+)$")


def chromium_path() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise AssertionError("the console's browser test needs Chromium: apt-get install chromium")
    return found


@given("the web console of a gateway and CSMS on topics of their own, open in headless Chromium")
def step_console(context: Context) -> None:
    suffix = uuid.uuid4().hex[:8]
    kafka = {"OCPPGW_KAFKA__SERVERS": context.kafka_servers, **topics_env("console", suffix)}
    programs = [
        Program(
            f"console-csms-{suffix}",
            "csms_server",
            csms_env(kafka, CONSOLE_CSMS_STATUS_PORT, heartbeat_interval="2"),
            context.log_dir,
        ),
        Program(
            f"console-gateway-{suffix}",
            "ocpp_gw",
            gateway_env(
                kafka,
                CONSOLE_GATEWAY_PORT,
                CONSOLE_GATEWAY_STATUS_PORT,
                f"gw-console-{suffix}",
                strict_csms_calls="enforce",
            ),
            context.log_dir,
        ),
        Program(
            f"console-{suffix}",
            "csms_server",
            {**kafka, "OCPPGW_CONSOLE__PORT": str(CONSOLE_PORT)},
            context.log_dir,
            ("console",),
        ),
    ]
    for program in programs:
        context.add_cleanup(_stop_cleanly, program)
    for program, needle in zip(programs, ("csms ready", "gateway ready", "console ready"), strict=True):
        program.wait_for_log(needle, timeout=90)
    context.console_kafka = kafka
    context.console_station = None
    playwright = sync_playwright().start()
    context.add_cleanup(playwright.stop)
    browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
    context.add_cleanup(browser.close)
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    context.page_errors = []
    page.on("pageerror", lambda error: context.page_errors.append(str(error)))
    page.goto(f"http://127.0.0.1:{CONSOLE_PORT}/")
    context.console_page = page


def _stop_cleanly(program: Program) -> None:
    code = program.stop()
    assert code == 0, f"{program.name} exited with {code}:\n{program.tail()}"


def _screenshot(context: Context, page: Page) -> None:
    name = f"console-{context.console_station}.png"
    page.screenshot(path=str(context.log_dir / name), full_page=True)
    wanted = os.environ.get("CONSOLE_SCREENSHOTS")
    if wanted:
        Path(wanted).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(wanted) / name))
    assert not context.page_errors, f"the page had script errors: {context.page_errors}"


@when('the simulated station "{station_id}" speaking "{protocol}" connects to that gateway')
def step_console_station(context: Context, station_id: str, protocol: str) -> None:
    env = {
        **context.console_kafka,
        "OCPPGW_CHARGE_STATION__GATEWAY_URL": f"ws://127.0.0.1:{CONSOLE_GATEWAY_PORT}/ocpp",
        "OCPPGW_CHARGE_STATION__CHARGE_SECONDS": "60",
        "OCPPGW_CHARGE_STATION__METER_INTERVAL": "0.5",
        "OCPPGW_CHARGE_STATION__RECONNECT_BASE": "0.2",
    }
    simulator = Program(
        f"console-sim-{station_id}",
        "charge_station",
        env,
        context.log_dir,
        ("--id", station_id, "--protocol", protocol),
    )
    context.add_cleanup(simulator.stop)
    simulator.wait_for_log("boot answered", timeout=30)
    context.console_station = station_id
    context.add_cleanup(_screenshot, context, context.console_page)  # before the station stops


def _row(context: Context, station_id: str) -> Locator:
    page: Page = context.console_page
    return page.locator(f'#stations tr[data-id="{station_id}"]')


@then('the page lists "{station_id}" as connected, with vendor "{vendor}" and model "{model}"')
def step_listed(context: Context, station_id: str, vendor: str, model: str) -> None:
    row = _row(context, station_id)
    expect(row).to_have_class(ONLINE, timeout=WAIT_MS)
    expect(row).to_contain_text(f"{vendor} {model}", timeout=WAIT_MS)


@when('I open "{station_id}" on the page')
def step_open(context: Context, station_id: str) -> None:
    _row(context, station_id).click()
    expect(context.console_page.locator("#station-title")).to_have_text(station_id, timeout=WAIT_MS)


def _timeline(context: Context, kind: str, action: str) -> Locator:
    page: Page = context.console_page
    return page.locator(f'#timeline tr.entry[data-kind="{kind}"][data-action="{action}"]')


@then("its timeline shows its BootNotification and a Heartbeat, each with the CSMS's answer and a round-trip time")
def step_timeline(context: Context) -> None:
    for action in ("BootNotification", "Heartbeat"):
        expect(_timeline(context, "call", action).first).to_be_visible(timeout=WAIT_MS)
        answer = _timeline(context, "result", action).first
        expect(answer).to_be_visible(timeout=WAIT_MS)
        expect(answer).to_contain_text("CSMS → station")
        expect(answer.locator("td").nth(4)).to_have_text(MILLISECONDS, timeout=WAIT_MS)
    _timeline(context, "result", "BootNotification").first.click()
    expect(context.console_page.locator("#timeline tr.json pre")).to_contain_text('"status": "Accepted"')


@when('I send "{action}" from the command form with its prefilled payload')
def step_send_prefilled(context: Context, action: str) -> None:
    page = context.console_page
    page.select_option("#action", action)
    assert json.loads(page.input_value("#payload")), "the form has no example payload for " + action
    _send(page)


@when('I send "{action}" from the command form with the payload {payload}')
def step_send_payload(context: Context, action: str, payload: str) -> None:
    page = context.console_page
    page.select_option("#action", action)
    page.fill("#payload", payload)
    _send(page)


def _send(page: Page) -> None:
    page.evaluate("document.getElementById('answer').removeAttribute('data-status')")
    page.click("#send")


@then('the page shows the station\'s answer "{answer}"')
def step_answer(context: Context, answer: str) -> None:
    shown = context.console_page.locator("#answer")
    if answer in ("callerror", "timeout", "offline"):
        expect(shown).to_have_attribute("data-status", answer, timeout=WAIT_MS)
        return
    expect(shown).to_have_attribute("data-status", "answered", timeout=WAIT_MS)
    expect(shown.locator("pre")).to_contain_text(f'"status": "{answer}"')


@then('the timeline shows "{station_id}" disconnecting and booting again')
def step_reboots(context: Context, station_id: str) -> None:
    page = context.console_page
    expect(page.locator('#timeline tr[data-kind="disconnected"]').first).to_be_attached(timeout=WAIT_MS)
    expect(_timeline(context, "call", "BootNotification")).to_have_count(2, timeout=WAIT_MS)
    expect(_row(context, station_id)).to_have_class(ONLINE, timeout=WAIT_MS)


@then("the transaction chart gets points as meter values arrive")
def step_chart(context: Context) -> None:
    page = context.console_page
    expect(page.locator("#chart")).to_have_attribute("data-points", THREE_OR_MORE, timeout=WAIT_MS)
    expect(page.locator("#chart canvas").first).to_be_visible()
    expect(page.locator("#transaction-title")).to_contain_text("running")


@then('the timeline shows a CALLERROR answering "{action}", not marked as the gateway\'s')
def step_station_error(context: Context, action: str) -> None:
    error = _timeline(context, "error", action).first
    expect(error).to_be_visible(timeout=WAIT_MS)
    expect(error.locator(".by-gateway")).to_have_count(0)


@then('the timeline shows a CALLERROR answering "{action}", marked as the gateway\'s own')
def step_gateway_error(context: Context, action: str) -> None:
    error = _timeline(context, "error", action).first
    expect(error).to_be_visible(timeout=WAIT_MS)
    expect(error.locator(".by-gateway")).to_have_count(1)
