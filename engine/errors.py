"""The errors `engine` treats as the user's to fix: `UserError` (from `engine.common.errors`, shared
with `analysis`) and the language layer's `CodeInputError` for programs it cannot read."""
from __future__ import annotations

from engine.code.languages import CodeInputError
from engine.common.errors import UserError

# What the `engine` program prints as one line instead of a traceback.
USER_ERRORS: tuple[type[Exception], ...] = (UserError, CodeInputError)

__all__ = ["USER_ERRORS", "CodeInputError", "UserError"]
