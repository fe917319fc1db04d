"""The Gradio chat app: `scout chat --index DIR` or `build_app(scout)` then `launch(app)`.

Importing `scout.app.ui` imports Gradio, so this package loads it only when a function is called.
"""

from __future__ import annotations

from pathlib import Path


def build_app(scout, generator_factory=None, backends=None):
    """Build the chat app for an open `Scout`; see `scout.app.ui.build_app`."""
    from scout.app.ui import build_app as build

    return build(scout, generator_factory=generator_factory, backends=backends)


def launch(app, host: str = "127.0.0.1", port: int | None = None, block: bool = True, quiet: bool = False):
    """Serve a built app with Scout's theme; see `scout.app.ui.launch`."""
    from scout.app.ui import launch as serve_app

    return serve_app(app, host=host, port=port, block=block, quiet=quiet)


def serve(index: str | Path, host: str = "127.0.0.1", port: int | None = None) -> None:
    """Open the index at `index` and serve the chat app until the process is interrupted."""
    from scout.api import Scout

    with Scout.open(index, create=False) as scout:
        launch(build_app(scout), host=host, port=port)


__all__ = ["build_app", "launch", "serve"]
