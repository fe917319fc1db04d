"""A local HTTP server that speaks the Anthropic Messages API, for offline tests with the real client.

It serves `POST /v1/messages` as JSON or, when the request sets `"stream": true`, as the
server-sent events of the streaming API. The event sequence and the error bodies follow the
shapes that the `anthropic` Python SDK 2.17 parses (`anthropic/lib/streaming/_messages.py`,
`anthropic/_streaming.py` and `anthropic/types/shared/error_response.py`).

>>> import anthropic
>>> with FakeAnthropicServer(reply=lambda request: "Paris is in France. [1]") as server:
...     client = anthropic.Anthropic(api_key="test", base_url=server.url, max_retries=0)
...     message = client.messages.create(
...         model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "Where is Paris?"}]
...     )
>>> message.content[0].text, message.usage.input_tokens, message.usage.output_tokens
('Paris is in France. [1]', 3, 5)
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_REPLY = "Paris is the capital of France. [1]"

MESSAGES_PATH = "/v1/messages"

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
"""Error `type` that the Anthropic API sends with each HTTP status."""

ERROR_MESSAGES = {
    "authentication_error": "invalid x-api-key",
    "overloaded_error": "Overloaded",
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit",
    "api_error": "Internal server error",
}

Reply = Callable[[dict[str, Any]], str]

_PIECE = re.compile(r"\s*\S+")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it, with lower-case header names."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any

    @property
    def api_key(self) -> str | None:
        """The key from `x-api-key` or, as anthropic 2.17 sends it, from `Authorization: Bearer`."""
        return api_key_from_headers(self.headers)


def api_key_from_headers(headers: dict[str, str]) -> str | None:
    if "x-api-key" in headers:
        return headers["x-api-key"]
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def count_tokens(text: str) -> int:
    """Count whitespace-separated words: a deterministic stand-in for a tokenizer."""
    return len(text.split())


def split_pieces(text: str) -> list[str]:
    """Split text into one piece per word, each with the whitespace before it, so the pieces join back into `text`."""
    return _PIECE.findall(text)


def count_input_tokens(request: dict[str, Any]) -> int:
    """Count the words of the system prompt and of every message's text."""
    total = count_tokens(_text_of(request.get("system", "")))
    for message in request.get("messages", []):
        total += count_tokens(_text_of(message.get("content", "")))
    return total


def _text_of(content: Any) -> str:
    """Join the text of a string or of a list of content blocks such as `{"type": "text", "text": ...}`."""
    if isinstance(content, str):
        return content
    return " ".join(block.get("text", "") for block in content if isinstance(block, dict))


def error_body(status: int, message: str | None = None, request_id: str | None = None) -> dict[str, Any]:
    """Build the JSON body the Anthropic API sends with an error status."""
    error_type = ERROR_TYPES.get(status, "api_error")
    text = message or ERROR_MESSAGES.get(error_type, error_type.replace("_", " "))
    body: dict[str, Any] = {"type": "error", "error": {"type": error_type, "message": text}}
    if request_id is not None:
        body["request_id"] = request_id
    return body


class FakeAnthropicServer:
    """A Messages API server on 127.0.0.1 with scripted replies, failures and delays.

    `reply(request_json)` returns the reply text, and the server sends its first `max_tokens`
    words, one word per `text_delta` when streaming. Token counts are whitespace words, so tests
    can compute them. Every request is recorded in `requests`, including rejected ones.

    Failures, checked in this order on each request:
    - `delay_s` seconds of waiting before any response, to trigger client timeouts;
    - 401 `authentication_error` when `expected_key` is set and the request's key differs;
    - `fail_status` with its Anthropic error body for the first `fail_first` valid-key requests;
    - with `stream_error_after=N`, a streamed reply stops after N text deltas with an
      `error` event carrying `overloaded_error`, as the API does under load.

    `retry_after_ms`, when set, adds a `retry-after-ms` header to error responses. The
    anthropic client waits that long before a retry instead of its default backoff.
    """

    def __init__(
        self,
        reply: Reply | None = None,
        *,
        fail_first: int = 0,
        fail_status: int = 529,
        delay_s: float = 0.0,
        expected_key: str | None = None,
        stream_error_after: int | None = None,
        retry_after_ms: int | None = None,
    ) -> None:
        self.reply: Reply = reply or (lambda request: DEFAULT_REPLY)
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.delay_s = delay_s
        self.expected_key = expected_key
        self.stream_error_after = stream_error_after
        self.retry_after_ms = retry_after_ms
        self._requests: list[RecordedRequest] = []
        self._failures_sent = 0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL to pass to `anthropic.Anthropic(base_url=...)`."""
        if self._httpd is None:
            raise RuntimeError("FakeAnthropicServer is not running; use it as a context manager or call start()")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def start(self) -> FakeAnthropicServer:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread."""
        handler = type("Handler", (_MessagesHandler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-anthropic", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving. Handlers still waiting out `delay_s` wake up and close their connection without a response."""
        self._closing.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeAnthropicServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _record(self, request: RecordedRequest) -> str:
        """Store the request and return a fresh request id."""
        with self._lock:
            self._requests.append(request)
            return f"req_fake_{next(self._ids):04d}"

    def _take_failure(self) -> bool:
        """Return True while scripted failures remain, and count this one."""
        with self._lock:
            if self._failures_sent >= self.fail_first:
                return False
            self._failures_sent += 1
            return True


class _MessagesHandler(BaseHTTPRequestHandler):
    """Request handler of one FakeAnthropicServer, which a per-server subclass sets as `fake`."""

    fake: FakeAnthropicServer
    server_version = "FakeAnthropic/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the default stderr access log out of test output."""

    def do_GET(self) -> None:
        request_id = self.fake._record(RecordedRequest("GET", self.path, self._header_dict(), None))
        self._send_error(404, request_id, f"{self.command} {self.path} is not served by the fake Messages API")

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw_body = self.rfile.read(length)
        try:
            body = json.loads(raw_body) if raw_body else None
        except json.JSONDecodeError:
            body = raw_body.decode("utf-8", "replace")
        request_id = self.fake._record(RecordedRequest("POST", self.path, self._header_dict(), body))

        if self.fake.delay_s and self.fake._closing.wait(self.fake.delay_s):
            return
        problem = self._find_problem(body)
        if problem is not None:
            self._send_error(problem[0], request_id, problem[1])
            return
        if self.fake._take_failure():
            self._send_error(self.fake.fail_status, request_id)
            return

        text, stop_reason = self._reply_text(body)
        if body.get("stream"):
            self._send_stream(body, text, stop_reason, request_id)
        else:
            self._send_json(200, message_json(body, text, stop_reason, request_id), request_id)

    def _find_problem(self, body: Any) -> tuple[int, str | None] | None:
        """Return the status and message the API would reject this request with, or None."""
        if self.path.split("?", 1)[0] != MESSAGES_PATH:
            return 404, f"{self.command} {self.path} is not served by the fake Messages API"
        expected_key = self.fake.expected_key
        if expected_key is not None and api_key_from_headers(self._header_dict()) != expected_key:
            return 401, None
        if not isinstance(body, dict):
            return 400, "request body must be a JSON object"
        for field in ("model", "max_tokens", "messages"):
            if field not in body:
                return 400, f"{field}: Field required"
        if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
            return 400, f"max_tokens: must be a positive integer, got {body['max_tokens']!r}"
        return None

    def _reply_text(self, body: dict[str, Any]) -> tuple[str, str]:
        """Call the scripted reply, cut it to `max_tokens` words and return it with its stop reason."""
        pieces = split_pieces(self.fake.reply(body))
        max_tokens = body["max_tokens"]
        stop_reason = "max_tokens" if len(pieces) > max_tokens else "end_turn"
        return "".join(pieces[:max_tokens]).strip(), stop_reason

    def _header_dict(self) -> dict[str, str]:
        return {name.lower(): value for name, value in self.headers.items()}

    def _send_error(self, status: int, request_id: str, message: str | None = None) -> None:
        body = error_body(status, message, request_id)
        logger.debug(
            "Fake Anthropic server sent %d %s for %s %s, request id %s",
            status,
            body["error"]["type"],
            self.command,
            self.path,
            request_id,
        )
        extra = {}
        if self.fake.retry_after_ms is not None:
            extra["retry-after-ms"] = str(self.fake.retry_after_ms)
        self._send_json(status, body, request_id, extra)

    def _send_json(self, status: int, payload: dict[str, Any], request_id: str, extra: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", request_id)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_stream(self, body: dict[str, Any], text: str, stop_reason: str, request_id: str) -> None:
        """Send the reply as server-sent events.

        The response has no content-length, so the client reads events until the connection closes,
        as HTTP/1.0 allows.
        """
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("request-id", request_id)
        self.end_headers()
        for event, data in stream_events(body, text, stop_reason, request_id, self.fake.stream_error_after):
            self.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
            self.wfile.flush()


def message_json(request: dict[str, Any], text: str, stop_reason: str, request_id: str) -> dict[str, Any]:
    """Build a complete non-streaming Message for `text`."""
    return {
        "id": _message_id(request_id),
        "type": "message",
        "role": "assistant",
        "model": request["model"],
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": count_input_tokens(request), "output_tokens": count_tokens(text)},
    }


def stream_events(
    request: dict[str, Any], text: str, stop_reason: str, request_id: str, error_after: int | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield `(event name, data)` pairs in the order the streaming Messages API sends them.

    The text goes out one word per `text_delta`, each word after the first with the whitespace
    before it. With `error_after`, an `error` event replaces everything after that many deltas.
    """
    start_message = {
        "id": _message_id(request_id),
        "type": "message",
        "role": "assistant",
        "model": request["model"],
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": count_input_tokens(request), "output_tokens": 1},
    }
    yield "message_start", {"type": "message_start", "message": start_message}
    yield "content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    yield "ping", {"type": "ping"}

    for sent, piece in enumerate(split_pieces(text)):
        if error_after is not None and sent >= error_after:
            yield "error", error_body(529)
            return
        yield "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}

    delta = {"stop_reason": stop_reason, "stop_sequence": None}
    yield "content_block_stop", {"type": "content_block_stop", "index": 0}
    yield "message_delta", {"type": "message_delta", "delta": delta, "usage": {"output_tokens": count_tokens(text)}}
    yield "message_stop", {"type": "message_stop"}


def _message_id(request_id: str) -> str:
    return "msg_" + request_id.removeprefix("req_")
