"""Answer generation through the Anthropic Messages API (Claude Haiku by default).

The `anthropic` client is imported and created on the first `stream` call, so building a
generator needs neither the package import nor an API key. Retries are the client's own: in
anthropic 2.17 it retries 408, 409, 429, 5xx, timeouts and connection failures up to
`max_retries` times, with exponential backoff or the server's `retry-after` delay.

>>> from scout.generate.base import Prompt
>>> from scout.testing.anthropic_server import FakeAnthropicServer
>>> with FakeAnthropicServer(reply=lambda request: "Paris is in France. [1]") as server:
...     generator = AnthropicGenerator(api_key="test", base_url=server.url)
...     pieces = list(generator.stream(Prompt("Cite sources.", "Where is Paris?"), max_tokens=64))
>>> "".join(p for p in pieces if isinstance(p, str)), pieces[-1]
('Paris is in France. [1]', Usage(input_tokens=5, output_tokens=5))
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from scout.errors import ConfigError, GeneratorError
from scout.generate.base import Prompt
from scout.types import Usage

if TYPE_CHECKING:
    import anthropic

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "claude-haiku-4-5"
DEFAULT_BASE_URL = "https://api.anthropic.com"


class AnthropicGenerator:
    """Streams answers from an Anthropic model.

    `api_key` defaults to ANTHROPIC_API_KEY and `base_url` to ANTHROPIC_BASE_URL, both read
    at first use. Every `anthropic.APIError` (status, timeout and connection errors) is raised
    as GeneratorError, with the anthropic exception as its `__cause__`.
    """

    backend = "anthropic"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 2,
    ) -> None:
        if timeout_s <= 0:
            raise ConfigError(f"invalid timeout_s {timeout_s!r}; expected a number of seconds above 0")
        if max_retries < 0:
            raise ConfigError(f"invalid max_retries {max_retries!r}; expected 0 or more")
        self.model = model
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self._api_key = api_key
        self._base_url = base_url
        self._client: anthropic.Anthropic | None = None

    def __repr__(self) -> str:
        return f"AnthropicGenerator(model={self.model!r}, timeout_s={self.timeout_s!r}, max_retries={self.max_retries!r})"

    @property
    def base_url(self) -> str:
        """The API endpoint: the constructor argument, else ANTHROPIC_BASE_URL, else the public API."""
        return self._base_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL

    def stream(self, prompt: Prompt, max_tokens: int) -> Iterator[str | Usage]:
        """Yield the answer's text deltas as they arrive, then one Usage with the API's token counts."""
        import anthropic

        client = self._get_client()
        try:
            with client.messages.stream(
                model=self.model,
                max_tokens=max_tokens,
                system=prompt.system,
                messages=[{"role": "user", "content": prompt.user}],
            ) as message_stream:
                yield from message_stream.text_stream
                message = message_stream.get_final_message()
        except anthropic.APIError as error:
            raise GeneratorError(self._describe_error(error)) from error

        logger.debug(
            "Anthropic model %s returned %d output tokens for %d input tokens, stop reason %s",
            message.model,
            message.usage.output_tokens,
            message.usage.input_tokens,
            message.stop_reason,
        )
        yield Usage(input_tokens=message.usage.input_tokens, output_tokens=message.usage.output_tokens)

    def _get_client(self) -> anthropic.Anthropic:
        """Return the client, creating it on first use. Raises GeneratorError when no API key is set."""
        if self._client is not None:
            return self._client

        api_key = self._api_key or os.environ.get("ANTHROPIC_API_KEY")
        if not api_key:
            raise GeneratorError(
                "ANTHROPIC_API_KEY is not set, so the anthropic backend cannot call the API; "
                "set it with `export ANTHROPIC_API_KEY=<your key>`, or use `--backend local` to answer with a local model"
            )

        import anthropic

        logger.info(
            "Creating Anthropic client for model %s at %s (timeout %.1fs, max_retries %d)",
            self.model,
            self.base_url,
            self.timeout_s,
            self.max_retries,
        )
        self._client = anthropic.Anthropic(
            api_key=api_key,
            base_url=self.base_url,
            timeout=self.timeout_s,
            max_retries=self.max_retries,
        )
        return self._client

    def _describe_error(self, error: anthropic.APIError) -> str:
        """Turn an anthropic exception into a message that names the model, the status and the fix."""
        import anthropic

        logger.debug("Anthropic call for model %s failed: %r", self.model, error)
        attempts = _describe_attempts(self.max_retries + 1)
        if isinstance(error, anthropic.APITimeoutError):
            return (
                f"Anthropic API request for model {self.model!r} timed out: no response within "
                f"{self.timeout_s:g}s {attempts}; raise timeout_s, or check the network and the endpoint {self.base_url}"
            )
        if isinstance(error, anthropic.APIConnectionError):
            return (
                f"could not connect to the Anthropic API at {self.base_url} for model {self.model!r} {attempts}: "
                f"{error.message}; check the network, any proxy and ANTHROPIC_BASE_URL"
            )
        if isinstance(error, anthropic.APIStatusError):
            return self._describe_status_error(error, attempts)
        return f"Anthropic API call for model {self.model!r} failed: {error.message}"

    def _describe_status_error(self, error: anthropic.APIStatusError, attempts: str) -> str:
        import anthropic

        detail = _status_detail(error)
        if error.status_code < 400:
            # An `error` event arrived after the 200 response had started, and the client never retries those.
            attempts = "while streaming the answer"
        if isinstance(error, anthropic.AuthenticationError):
            return (
                f"Anthropic API authentication failed for model {self.model!r} ({detail}); "
                "check that ANTHROPIC_API_KEY contains a valid key, or use `--backend local`"
            )
        if isinstance(error, anthropic.PermissionDeniedError):
            return f"the API key has no access to model {self.model!r} ({detail}); use a model the key's workspace allows"
        if isinstance(error, anthropic.NotFoundError):
            return f"Anthropic model {self.model!r} was not found ({detail}); check the model name"
        if isinstance(error, anthropic.RateLimitError):
            return (
                f"Anthropic API rate limit reached for model {self.model!r} {attempts} ({detail}); "
                "wait and retry, or raise max_retries"
            )
        if isinstance(error, anthropic.InternalServerError) or error.type in ("overloaded_error", "api_error"):
            return (
                f"Anthropic API failed for model {self.model!r} {attempts} ({detail}); "
                "this is on the server side, so retry later or raise max_retries"
            )
        if isinstance(error, anthropic.BadRequestError):
            return (
                f"Anthropic API rejected the request for model {self.model!r} ({detail}); "
                "check max_tokens and the prompt length against the model's limits"
            )
        return f"Anthropic API rejected the request for model {self.model!r} ({detail})"


def _describe_attempts(count: int) -> str:
    return "on 1 attempt" if count == 1 else f"on all {count} attempts"


def _status_detail(error: anthropic.APIStatusError) -> str:
    """Format the status, error type, API message and request id of a failed call."""
    parts = [f"HTTP {error.status_code}" if error.status_code >= 400 else "error event"]
    if error.type:
        parts.append(error.type)
    detail = " ".join(parts)
    if error.api_message:
        detail += f": {error.api_message}"
    if error.request_id:
        detail += f", request id {error.request_id}"
    return detail
