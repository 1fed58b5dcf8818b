"""Browser steps for the end-to-end tests."""

from __future__ import annotations

from playwright.sync_api import Page


def click_and_load(page: Page, selector: str) -> int:
    """Click what navigates (a form's button, a link) and wait until the page it leads to
    has loaded; its HTTP status. A bare click returns once the navigation has begun, and
    the page read right after it may still be empty on a busy machine (seen in CI)."""
    with page.expect_navigation() as navigation:
        page.click(selector)
    response = navigation.value
    return response.status if response is not None else 0
