"""The chat app served on 127.0.0.1 and driven in headless Chromium through Playwright.

The browser is Debian's Chromium at /usr/bin/chromium, given to Playwright as its executable, so
Playwright downloads no browser. Every request to a host other than 127.0.0.1 is aborted and
recorded, and a test fails if any was made.
"""

from __future__ import annotations

import socket
import sqlite3
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from scout import IndexConfig, Scout
from scout.testing.fakes import FakeEmbedder, FakeGenerator

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
QUESTION = "What is the capital of France?"
TIMEOUT_MS = 30_000


class PacedGenerator(FakeGenerator):
    """FakeGenerator that waits between words, so the browser can see the answer grow."""

    def stream(self, prompt, max_tokens):
        for item in super().stream(prompt, max_tokens):
            time.sleep(0.15)
            yield item


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def served_app(tmp_path, tiny_corpus):
    from scout.app import build_app, launch

    scout = Scout.open(tmp_path / "index", config=IndexConfig.for_embedder("fake", 64), embedder=FakeEmbedder(64))
    scout.ingest([tiny_corpus], progress=False)
    app = build_app(scout, generator_factory=lambda backend: PacedGenerator())
    _, url, _ = launch(app, host="127.0.0.1", port=free_port(), block=False, quiet=True)
    yield url, scout
    app.close()
    scout.close()


@pytest.fixture
def page(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}; install it with: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    outside_requests: list[str] = []

    def only_localhost(route):
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlparse(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            outside_requests.append(url)
            route.abort()

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )
        context.route("**/*", only_localhost)
        context.set_default_timeout(TIMEOUT_MS)
        yield context.new_page()
        context.close()
    assert outside_requests == []


def ask(page, question: str) -> None:
    page.fill("#scout-question textarea", question)
    page.press("#scout-question textarea", "Enter")


def feedback_rows(catalog: Path, timeout_s: float = 10.0) -> list[tuple[int, int, str]]:
    """Feedback rows joined with their query, polled until one exists or the timeout passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        with sqlite3.connect(catalog) as conn:
            rows = list(conn.execute("SELECT f.query_log_id, f.rating, q.query FROM feedback f JOIN query_log q ON q.id = f.query_log_id"))
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_chat_streams_cites_and_stores_feedback(served_app, page):
    url, scout = served_app
    page.goto(url)

    ask(page, QUESTION)

    page.wait_for_function("document.querySelector('#scout-chat').innerText.includes('▍')")
    citation = page.locator("#scout-chat a[href^='#cite-']").first
    citation.wait_for()
    answer = page.locator("#scout-chat .message.bot").last.inner_text()
    assert "Paris is the capital of France." in answer
    assert "▍" not in answer

    citation.click()
    passage = page.locator("#scout-passage")
    passage.locator(".scout-doc-id", has_text="paris").wait_for()
    paris = next(chunk for chunk in scout.store.catalog.chunks_by_id(c for c, _ in scout.store.catalog.all_chunks()).values() if chunk.doc_id == "paris")
    assert f"characters {paris.start}–{paris.end}" in passage.inner_text()
    assert "The Eiffel Tower stands on the Champ de Mars." in passage.inner_text()

    page.get_by_role("button", name="Like").last.click()
    rows = feedback_rows(scout.store.catalog.path)
    assert rows == [(rows[0][0], 1, QUESTION)]


def test_upload_is_answerable_without_restart(served_app, page, tmp_path):
    url, scout = served_app
    upload = tmp_path / "lisbon.md"
    upload.write_text("# Lisbon\n\nLisbon sits on the Tagus river.\n", encoding="utf-8")
    page.goto(url)

    page.get_by_role("tab", name="Index").click()
    page.set_input_files("#scout-upload input[type=file]", str(upload))
    page.locator("#scout-upload-status", has_text="Indexed 1 file(s): lisbon.md").wait_for()
    ask(page, "Which river is Lisbon on?")

    page.locator("#scout-chat a[href^='#cite-']").first.wait_for()
    assert "Lisbon sits on the Tagus river." in page.locator("#scout-chat .message.bot").last.inner_text()
    assert scout.stats()["documents"] == 6
