"""One exception tree for the library; each class carries the exit code the CLI uses."""

from __future__ import annotations

# Exit codes of the CLI contract (see README, "Exit codes").
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_TEMPFAIL = 75  # sysexits EX_TEMPFAIL: busy, relay down, partly sent; safe to re-run


class PolicyfeedError(Exception):
    """Base of every error the library raises on purpose."""

    exit_code = EXIT_ERROR


class ConfigError(PolicyfeedError):
    """A configuration file, key or value is wrong."""


class InputError(PolicyfeedError):
    """Bad input: a record, a line or a file that cannot be accepted.

    The message names the file and the record or line, so the user can fix it.
    """

    def __init__(self, message: str, *, source: str | None = None, where: str | None = None):
        self.source = source
        self.where = where
        prefix = ""
        if source and where:
            prefix = f"{source}, {where}: "
        elif source or where:
            prefix = f"{source or where}: "
        super().__init__(prefix + message)


class UsageError(InputError):
    """A command-line value that cannot mean anything here (a period off the schedule, in the
    future, or in no known spelling): the CLI exits 2, as for any usage error."""

    exit_code = EXIT_USAGE


class NotFoundError(PolicyfeedError):
    """A named record (post, issue, subscriber…) does not exist."""


class ConflictError(PolicyfeedError):
    """The request contradicts the state of the database (duplicate slug, post already sent…)."""


class DigestTooLargeError(PolicyfeedError):
    """The digest would be clipped by mail clients even with summaries only."""


class TemporaryError(PolicyfeedError):
    """Something that may work on a later run: another run holds the lock, the relay is down."""

    exit_code = EXIT_TEMPFAIL


class BusyError(TemporaryError):
    """Another run holds the exclusive lock."""


class DeliveryError(TemporaryError):
    """Delivery did not finish; pending rows stay pending for the next run."""
