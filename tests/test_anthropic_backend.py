"""AnthropicGenerator and FakeAnthropicServer, driven offline through the real anthropic client."""

from __future__ import annotations

import logging
import socket

import anthropic
import pytest

from scout.errors import ConfigError, GeneratorError
from scout.generate.anthropic import AnthropicGenerator
from scout.generate.base import Generator, Prompt
from scout.generate.pricing import DEFAULT_PRICES, Prices, cost_usd, prices_for
from scout.testing.anthropic_server import DEFAULT_REPLY, FakeAnthropicServer
from scout.types import Usage

KEY = "sk-ant-test-0123456789"
PROMPT = Prompt(
    system="Answer only from the numbered sources and cite them.",
    user="<sources>\n[1] Paris is the capital of France.\n</sources>\n\nQuestion: What is the capital of France?",
)
REPLY = "The capital of France is Paris. [1]"


def collect_stream(generator: AnthropicGenerator, max_tokens: int = 64) -> tuple[list[str], list[Usage]]:
    """Consume a stream and split it into text pieces and Usage items."""
    items = list(generator.stream(PROMPT, max_tokens=max_tokens))
    texts = [item for item in items if isinstance(item, str)]
    usages = [item for item in items if isinstance(item, Usage)]
    assert items[-1] is usages[-1], "Usage must be the last item of the stream"
    return texts, usages


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server():
    with FakeAnthropicServer(reply=lambda request: REPLY, expected_key=KEY) as fake:
        yield fake


def test_generator_satisfies_protocol():
    generator = AnthropicGenerator()

    assert isinstance(generator, Generator)
    assert generator.backend == "anthropic"
    assert generator.model == "claude-haiku-4-5"


def test_stream_text_equals_reply(server):
    texts, usages = collect_stream(AnthropicGenerator(api_key=KEY, base_url=server.url))

    assert "".join(texts) == REPLY
    assert len(texts) > 1
    assert len(usages) == 1


def test_stream_usage_has_server_counts(server):
    _, usages = collect_stream(AnthropicGenerator(api_key=KEY, base_url=server.url))

    expected_input = len(PROMPT.system.split()) + len(PROMPT.user.split())
    assert usages[0] == Usage(input_tokens=expected_input, output_tokens=len(REPLY.split()))


def test_request_carries_prompt_model_and_key(server):
    collect_stream(AnthropicGenerator(model="claude-3-5-haiku", api_key=KEY, base_url=server.url), max_tokens=77)

    [request] = server.requests
    assert request.path == "/v1/messages"
    assert request.body["model"] == "claude-3-5-haiku"
    assert request.body["max_tokens"] == 77
    assert request.body["system"] == PROMPT.system
    assert request.body["messages"] == [{"role": "user", "content": PROMPT.user}]
    assert request.body["stream"] is True
    assert request.api_key == KEY
    assert "anthropic-version" in request.headers


def test_max_tokens_truncates_reply(server):
    texts, usages = collect_stream(AnthropicGenerator(api_key=KEY, base_url=server.url), max_tokens=3)

    assert "".join(texts) == "The capital of"
    assert usages[0].output_tokens == 3


def test_env_vars_supply_key_and_base_url(server, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)

    texts, _ = collect_stream(AnthropicGenerator())

    assert "".join(texts) == REPLY
    assert server.requests[0].api_key == KEY


def test_retries_after_overloaded():
    with FakeAnthropicServer(fail_first=2, fail_status=529, retry_after_ms=10) as fake:
        texts, _ = collect_stream(AnthropicGenerator(api_key=KEY, base_url=fake.url, max_retries=2))

    assert "".join(texts) == DEFAULT_REPLY
    assert len(fake.requests) == 3


def test_retries_exhausted_raise_generator_error():
    with FakeAnthropicServer(fail_first=3, fail_status=529, retry_after_ms=10) as fake:
        with pytest.raises(GeneratorError) as caught:
            collect_stream(AnthropicGenerator(api_key=KEY, base_url=fake.url, max_retries=2))

    message = str(caught.value)
    assert "529" in message
    assert "overloaded_error" in message
    assert "claude-haiku-4-5" in message
    assert isinstance(caught.value.__cause__, anthropic.APIStatusError)
    assert len(fake.requests) == 3


def test_rate_limit_names_status():
    with FakeAnthropicServer(fail_first=1, fail_status=429) as fake:
        with pytest.raises(GeneratorError) as caught:
            collect_stream(AnthropicGenerator(api_key=KEY, base_url=fake.url, max_retries=0))

    assert "rate limit" in str(caught.value)
    assert "429" in str(caught.value)
    assert isinstance(caught.value.__cause__, anthropic.RateLimitError)


def test_delay_beyond_timeout_raises():
    with FakeAnthropicServer(delay_s=5.0) as fake:
        with pytest.raises(GeneratorError) as caught:
            collect_stream(AnthropicGenerator(api_key=KEY, base_url=fake.url, timeout_s=0.2, max_retries=0))

    assert "timed out" in str(caught.value)
    assert "0.2s" in str(caught.value)
    assert isinstance(caught.value.__cause__, anthropic.APITimeoutError)


def test_wrong_key_raises_authentication_error(server):
    with pytest.raises(GeneratorError) as caught:
        collect_stream(AnthropicGenerator(api_key="sk-ant-wrong-key", base_url=server.url))

    message = str(caught.value)
    assert "authentication" in message.lower()
    assert "401" in message
    assert "sk-ant-wrong-key" not in message
    assert isinstance(caught.value.__cause__, anthropic.AuthenticationError)
    assert len(server.requests) == 1, "a 401 must not be retried"


def test_missing_key_names_env_var(server, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    generator = AnthropicGenerator(base_url=server.url)

    with pytest.raises(GeneratorError) as caught:
        collect_stream(generator)

    assert "ANTHROPIC_API_KEY" in str(caught.value)
    assert "--backend local" in str(caught.value)
    assert server.requests == []


def test_unreachable_server_raises_connection_error():
    url = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(GeneratorError) as caught:
        collect_stream(AnthropicGenerator(api_key=KEY, base_url=url, timeout_s=2.0, max_retries=0))

    assert "could not connect" in str(caught.value)
    assert url in str(caught.value)
    assert isinstance(caught.value.__cause__, anthropic.APIConnectionError)


def test_error_event_mid_stream_raises():
    with FakeAnthropicServer(stream_error_after=2) as fake:
        generator = AnthropicGenerator(api_key=KEY, base_url=fake.url)
        pieces = []
        with pytest.raises(GeneratorError) as caught:
            for item in generator.stream(PROMPT, max_tokens=64):
                pieces.append(item)

    assert pieces == ["Paris", " is"]
    assert "overloaded_error" in str(caught.value)
    assert "while streaming" in str(caught.value)


def test_logs_never_contain_key(server, caplog):
    caplog.set_level(logging.DEBUG)

    collect_stream(AnthropicGenerator(api_key=KEY, base_url=server.url))
    with pytest.raises(GeneratorError):
        collect_stream(AnthropicGenerator(api_key=KEY + "-wrong", base_url=server.url))

    assert "Creating Anthropic client" in caplog.text
    assert KEY not in caplog.text


def test_invalid_constructor_arguments_raise():
    with pytest.raises(ConfigError, match="timeout_s"):
        AnthropicGenerator(timeout_s=0)
    with pytest.raises(ConfigError, match="max_retries"):
        AnthropicGenerator(max_retries=-1)


def test_fake_server_serves_messages_create(server):
    client = anthropic.Anthropic(api_key=KEY, base_url=server.url, max_retries=0)

    message = client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=64,
        system=[{"type": "text", "text": "Be brief."}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "Capital of France?"}]}],
    )

    assert message.content[0].text == REPLY
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 2 + 3
    assert message.usage.output_tokens == len(REPLY.split())
    assert message.model == "claude-haiku-4-5"


def test_fake_server_rejects_unknown_path(server):
    client = anthropic.Anthropic(api_key=KEY, base_url=server.url + "/wrong", max_retries=0)

    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(model="m", max_tokens=8, messages=[{"role": "user", "content": "hi"}])

    assert caught.value.type == "not_found_error"
    assert caught.value.request_id == "req_fake_0001"


def test_cost_of_known_usage():
    usage = Usage(input_tokens=2_000, output_tokens=300)

    assert cost_usd(usage, DEFAULT_PRICES["claude-haiku-4-5"]) == pytest.approx(0.0035)
    assert cost_usd(usage, DEFAULT_PRICES["claude-3-5-haiku"]) == pytest.approx(0.0028)
    assert cost_usd(Usage(), Prices(1.0, 5.0)) == 0.0


def test_prices_for_dated_and_unknown_models():
    assert prices_for("claude-haiku-4-5-20251001") == DEFAULT_PRICES["claude-haiku-4-5"]
    assert prices_for("claude-3-5-haiku") == DEFAULT_PRICES["claude-3-5-haiku"]
    with pytest.raises(ConfigError, match="claude-opus"):
        prices_for("claude-opus-4-5")
