"""The runtime's user-facing errors: one line naming the file or value and the reason."""


class InferenceError(ValueError):
    """Base class: anything the user can fix (a bad folder, config, prompt, cache file)."""


class ConfigError(InferenceError):
    """config.json is missing, unreadable, or describes a model this runtime cannot run."""


class CheckpointError(InferenceError):
    """The weights are missing, in a refused format, or do not fit the config."""


class CacheMismatchError(InferenceError):
    """A saved cache or prefix state does not belong to this model or this prompt."""


class PromptTooLongError(InferenceError):
    """The prompt does not fit the context budget."""
