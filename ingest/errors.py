"""Exceptions `ingest` raises for user errors. The CLI prints them as `tome: error: <message>`."""


class IngestError(Exception):
    """A file, a value or a store that Tome cannot use, with a one-line reason."""


class ParseError(IngestError):
    """A file that cannot be read as a document (encrypted, corrupt, no text, wrong type...)."""


class StoreBusyError(IngestError):
    """Another process held the store's write lock for longer than we were willing to wait."""


class StoreVersionError(IngestError):
    """The store on disk was written with a schema this version of Tome does not read."""


class UnknownDocumentError(IngestError):
    """A DOC argument that matches no document, or more than one."""
