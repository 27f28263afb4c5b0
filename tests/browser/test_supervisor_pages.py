"""The supervisor's tab pages the agents (GET /supervisor returns 100 at a time) with More and First buttons."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.local.stack import LocalStack
from chalicelib.store.routing import SUPERVISOR_AGENTS_PAGE
from tests.browser.conftest import Admin
from tests.browser.test_console import WAIT_MS, _sign_in

expect = pytest.importorskip("playwright.sync_api").expect  # skipped, not broken, without playwright

pytestmark = pytest.mark.e2e


def test_a_supervisor_pages_through_more_agents_than_one_page(browser: Any, stack: LocalStack, admin: Admin) -> None:
    admin.create_agent("sue", "webchat")
    for n in range(SUPERVISOR_AGENTS_PAGE + 4):
        admin.create_agent(f"agent-{n:03d}", "webchat")  # sorted before "sue"
    context = browser.new_context()
    try:
        page = context.new_page()
        _sign_in(page, stack, "sue", role="supervisor")
        page.get_by_test_id("tab-supervisor").click()
        rows = page.get_by_test_id("agent-row")
        expect(rows).to_have_count(SUPERVISOR_AGENTS_PAGE, timeout=WAIT_MS)
        expect(rows.first).to_have_attribute("data-agent-id", "agent-000")
        expect(page.get_by_test_id("agents-first")).to_be_hidden()
        default = page.locator('[data-testid="queue-row"][data-queue="default"] [data-testid="queue-agents"]')
        expect(default).to_have_text(f"0 / 0 / {SUPERVISOR_AGENTS_PAGE + 5}")  # all created Offline, then sue signs in

        page.get_by_test_id("agents-more").click()
        expect(rows).to_have_count(5, timeout=WAIT_MS)
        expect(rows.last).to_have_attribute("data-agent-id", "sue")
        expect(page.get_by_test_id("agents-more")).to_be_hidden()
        page.wait_for_timeout(3500)  # a refresh keeps the page the supervisor is on
        expect(rows).to_have_count(5)

        page.get_by_test_id("agents-first").click()
        expect(rows).to_have_count(SUPERVISOR_AGENTS_PAGE, timeout=WAIT_MS)
    finally:
        context.close()
