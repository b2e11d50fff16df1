"""Errors that are the user's to fix: the CLI prints them as one line, without a traceback."""
from __future__ import annotations

from engine.code.languages import CodeInputError


class UserError(Exception):
    """Bad input or configuration; the message says what was wrong, where, and what to do."""


# Input errors raised deep in the language layer are user errors too.
USER_ERRORS: tuple[type[Exception], ...] = (UserError, CodeInputError)
