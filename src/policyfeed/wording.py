"""How counts read in messages: ``1 post``, ``2 posts`` (never ``1 posts``)."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str = "") -> str:
    """``count`` and ``noun``, in the plural unless the count is one (``plural`` when the
    plural is not ``noun + "s"``)."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
