"""Deterministic fakes for tests: an embedder, a generator and an Anthropic-compatible server."""
