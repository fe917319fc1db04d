"""The `scout chat` subcommand: serve the Gradio chat app for an index."""

from __future__ import annotations

DEFAULT_HOST = "127.0.0.1"


def add_commands(subparsers) -> None:
    """Add `chat` to the `scout` command's subparsers."""
    from scout.cli import DEFAULT_INDEX

    chat = subparsers.add_parser(
        "chat",
        help="serve the chat app: streamed cited answers, sources, feedback and uploads in the browser",
        description="Serve the Gradio chat app for an index until interrupted. The app holds the index open, so "
        "other scout commands on an index with embedded Qdrant storage fail until the app stops.",
    )
    chat.add_argument("--index", default=DEFAULT_INDEX, help=f"index directory (default {DEFAULT_INDEX})")
    chat.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST}; 0.0.0.0 serves the network)")
    chat.add_argument("--port", type=int, help="TCP port (default: 7860, or the next free port)")
    chat.set_defaults(handler=cmd_chat)


def cmd_chat(args) -> int:
    from scout.app import serve

    serve(args.index, host=args.host, port=args.port)
    return 0
