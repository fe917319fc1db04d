"""Exceptions Scout raises. Messages name the bad value, what was expected and the fix."""


class ScoutError(Exception):
    """Base class of every error Scout raises on purpose."""


class ConfigError(ScoutError):
    """A configuration value, option or argument is invalid."""


class IndexNotFoundError(ScoutError):
    """The index directory does not exist or holds no Scout index."""


class EmbedderMismatchError(ScoutError):
    """The embedder configured for queries differs from the one that built the index."""


class ModelNotFoundError(ScoutError):
    """A model reference resolves to nothing on this machine."""


class ModelIntegrityError(ScoutError):
    """A model file's SHA-256 differs from the recorded one."""


class GeneratorError(ScoutError):
    """A generator backend failed: a missing API key, a timeout, an API error."""


class IndexBusyError(ScoutError):
    """Another process holds the index's embedded Qdrant store."""
