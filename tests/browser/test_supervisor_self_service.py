"""The supervisor's tab shows today's self-service counts per article and channel: a visitor the bot answers and
who says "Yes" appears there as answered and solved."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from chalicelib.local.stack import LocalStack
from chalicelib.routing.config import DEFAULT_FILE
from tests.browser.conftest import Admin
from tests.browser.test_console import WAIT_MS, _sign_in
from tests.browser.test_widget_self_service import SELF_SERVICE, _publish

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.e2e

ARTICLE = "opening-hours"


def _counts(stack: LocalStack, admin: Admin) -> dict[str, int]:
    """Today's counts of the opening-hours article on web chat as the API has them (other tests may have some)."""
    view = requests.get(f"{stack.api_url}/supervisor", headers=admin.headers, timeout=10)
    assert view.status_code == 200, view.text
    rows = [r for r in view.json()["self_service"]["rows"] if (r["article_id"], r["channel"]) == (ARTICLE, "webchat")]
    return rows[0] if rows else {"answered": 0, "solved": 0, "handed_over": 0, "unconfirmed": 0, "recontact": 0}


def test_the_supervisor_sees_todays_self_service_counts_per_article_and_channel(
    browser: Any, stack: LocalStack, admin: Admin, site_server: str, screenshot: Any
) -> None:
    admin.create_agent("sue", "webchat")
    _publish(stack, admin, SELF_SERVICE)
    before = _counts(stack, admin)
    visitor_context, supervisor_context = browser.new_context(), browser.new_context()
    try:
        widget = visitor_context.new_page()
        widget.goto(site_server)
        widget.get_by_test_id("widget-bubble").click()
        widget.get_by_test_id("widget-input").fill("What are your opening hours?")
        widget.get_by_test_id("widget-send").click()
        expect(widget.get_by_test_id("widget-choice")).to_have_text(["Yes", "Talk to a person"], timeout=WAIT_MS)
        widget.get_by_test_id("widget-choice").filter(has_text="Yes").click()
        expect(widget.get_by_test_id("widget-choices")).to_have_count(0, timeout=WAIT_MS)

        page = supervisor_context.new_page()
        _sign_in(page, stack, "sue", role="supervisor")
        page.get_by_test_id("tab-supervisor").click()
        row = page.locator(f'[data-testid="self-service-row"][data-article="{ARTICLE}"][data-channel="webchat"]')
        expect(row.get_by_test_id("self-service-solved")).to_have_text(str(before["solved"] + 1), timeout=WAIT_MS)
        expect(row.get_by_test_id("self-service-answered")).to_have_text(str(before["answered"] + 1))
        expect(row.get_by_test_id("self-service-handed-over")).to_have_text(str(before["handed_over"]))
        expect(row.locator("th")).to_contain_text("Opening hours of our shop")  # the article's title, not its id
        total = page.locator('[data-testid="self-service-channel-total"][data-channel="webchat"]')
        expect(total.get_by_test_id("self-service-solved")).not_to_have_text("0")
        screenshot(page, "supervisor-self-service")
    finally:
        visitor_context.close()
        supervisor_context.close()
        _publish(stack, admin, DEFAULT_FILE.read_text(encoding="utf-8"))
