"""The exception `app` raises for user errors; the CLI prints it as `tome: error: <message>`."""


class AppError(Exception):
    """A question, a document reference, a mode or a history Tome cannot use, with a one-line reason."""
