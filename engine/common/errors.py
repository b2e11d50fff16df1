"""The error a user can fix: the CLI prints it as one line, without a traceback."""
from __future__ import annotations


class UserError(Exception):
    """Bad input or configuration; the message says what was wrong, where, and what to do."""
