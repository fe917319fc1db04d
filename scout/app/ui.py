"""The Gradio chat app: layout and event wiring around `ChatHandlers`."""

from __future__ import annotations

import os

# Gradio reads these when it is imported: no usage analytics, and no Hugging Face Hub calls.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import logging  # noqa: E402

import gradio as gr  # noqa: E402

from scout.api import Scout  # noqa: E402
from scout.app import render, theme  # noqa: E402
from scout.app.handlers import ChatHandlers, ChatUpdate, SessionState  # noqa: E402
from scout.app.service import ChatService, GeneratorFactory  # noqa: E402
from scout.ingest.loaders import SUPPORTED_SUFFIXES  # noqa: E402

logger = logging.getLogger(__name__)

MAX_UPLOAD_SIZE = "50mb"
"""Largest file the upload box accepts. Gradio rejects bigger files before Scout reads them."""

APP_THEME = gr.themes.Soft(
    primary_hue="indigo", font=[gr.themes.LocalFont("IBM Plex Sans"), "ui-sans-serif", "system-ui", "sans-serif"],
)
"""Gradio's Soft theme with fonts that Gradio serves itself, so the page loads nothing from other hosts."""

PLACEHOLDER = (
    "**Ask a question about your documents.**\n\n"
    "Scout answers from the passages it retrieves and cites them as [1], [2]. "
    "Click a citation to read the passage, and rate answers with the thumbs below them."
)


def build_app(scout: Scout, generator_factory: GeneratorFactory | None = None, backends: list[str] | None = None) -> gr.Blocks:
    """Build the chat app for an open index; `generator_factory` maps a backend name to a generator.

    The app uses this one `Scout` for every session and serialises access to it. Launch the
    result with `launch`, which adds the app's theme and CSS.
    """
    service = ChatService(scout, generator_factory=generator_factory, backends=backends)
    handlers = ChatHandlers(service, index_name=scout.store.path.name)
    stats_html, header_html = handlers.stats_panels()

    with gr.Blocks(title="Scout") as app:
        state = gr.State(SessionState())
        header = gr.HTML(header_html)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=420):
                chatbot = gr.Chatbot(
                    elem_id="scout-chat", height=560, show_label=False, placeholder=PLACEHOLDER,
                    feedback_options=("Like", "Dislike"), buttons=["copy"], layout="bubble",
                )
                with gr.Row(equal_height=True):
                    question = gr.Textbox(
                        elem_id="scout-question", placeholder="Ask a question, e.g. How does the virus spread?",
                        show_label=False, scale=6, submit_btn="Ask", autofocus=True,
                    )
                    backend = gr.Dropdown(
                        choices=service.backends, value=service.backends[0], label="Backend", scale=1, min_width=130,
                        elem_id="scout-backend", interactive=len(service.backends) > 1,
                    )
            with gr.Column(scale=2, min_width=340):
                passage = gr.HTML(render.passage_panel(None), elem_id="scout-passage", js_on_load=theme.CITATION_SCRIPT)
                with gr.Tabs():
                    with gr.Tab("Sources", elem_id="scout-sources-tab"):
                        sources = gr.HTML(render.sources_panel([], None, set()), elem_id="scout-sources", max_height=420)
                        related = gr.HTML("", elem_id="scout-related", js_on_load=theme.RELATED_SCRIPT)
                    with gr.Tab("Index", elem_id="scout-index-tab"):
                        stats = gr.HTML(stats_html, elem_id="scout-stats")
                        files = gr.File(
                            label="Add documents", file_count="multiple", file_types=list(SUPPORTED_SUFFIXES),
                            elem_id="scout-upload", height=130,
                        )
                        upload_status = gr.Markdown(elem_id="scout-upload-status")

        _wire_chat(handlers, question, chatbot, backend, state, sources, related, stats, header)
        passage.click(_citation_listener(handlers), inputs=[state], outputs=[passage], queue=False)
        related.click(_related_query_listener, inputs=None, outputs=[question], queue=False)
        chatbot.like(_like_listener(handlers), inputs=[state], outputs=[stats], queue=False)
        chatbot.clear(handlers.clear, inputs=None, outputs=[state, passage, sources, related], queue=False)
        files.upload(_upload_listener(handlers), inputs=[files, chatbot], outputs=[chatbot, upload_status, stats, header, files])
    return app


def launch(app: gr.Blocks, host: str = "127.0.0.1", port: int | None = None, block: bool = True, quiet: bool = False):
    """Serve the app with Scout's theme on `host`:`port`; with `block=False` return once it is up."""
    app.queue(default_concurrency_limit=1)
    return app.launch(
        server_name=host, server_port=port, prevent_thread_lock=not block, quiet=quiet, show_error=False,
        max_file_size=MAX_UPLOAD_SIZE, theme=APP_THEME, css=theme.CSS,
        footer_links=["gradio"],
    )


def _wire_chat(handlers: ChatHandlers, question, chatbot, backend, state, sources, related, stats, header) -> None:
    def respond(question_text, history, backend_name, session):
        for update in handlers.respond(question_text, history, backend_name, session):
            yield _keep_unchanged(update)

    outputs = [question, chatbot, sources, related, stats, header, state]
    question.submit(respond, inputs=[question, chatbot, backend, state], outputs=outputs, show_progress="hidden")


def _keep_unchanged(update: ChatUpdate) -> tuple:
    """Replace the handler's `None` (panel unchanged) by `gr.skip()`, since `None` would clear it."""
    return tuple(gr.skip() if value is None else value for value in update)


def _citation_listener(handlers: ChatHandlers):
    def open_citation(session, event: gr.EventData):
        return handlers.open_citation(getattr(event, "citation", ""), session)

    return open_citation


def _related_query_listener(event: gr.EventData):
    return getattr(event, "query", "")


def _like_listener(handlers: ChatHandlers):
    def rate(session, event: gr.LikeData):
        notice = handlers.rate(event.index, event.liked, session)
        gr.Info(notice)
        return handlers.stats_panels()[0]

    return rate


def _upload_listener(handlers: ChatHandlers):
    def upload(paths, history, progress=gr.Progress(track_tqdm=True)):
        progress(0, desc="Reading the uploaded files")
        return tuple(handlers.upload(paths, history))

    return upload
