"""One-line messages: the first line of an error, for the kit's "what happened, what to do"
lines."""

from __future__ import annotations

__all__ = ["first_line"]


def first_line(error: BaseException, limit: int | None = None) -> str:
    """The first line of `error`'s message (its type's name when it has none), cut at `limit`."""
    text = str(error).strip().splitlines()
    line = text[0] if text else type(error).__name__
    return line if limit is None else line[:limit]
