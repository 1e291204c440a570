"""Errors the CLI turns into one clean line and a non-zero exit."""


class DigestError(Exception):
    """Base class: anything the user can fix, reported without a traceback."""


class ConfigError(DigestError):
    """A config or topics file is missing, malformed or names a bad value."""


class FetchError(DigestError):
    """A source could not be fetched (unreachable host, bad status, refused URL)."""
