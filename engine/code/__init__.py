"""The language layer: find, rename and validate identifiers in C, Java and Python.

Every attack renames through this one layer, so its rules (what is renameable, which new
names are allowed, what counts as a meaning-preserving rename) are the toolkit's rules.

    >>> from engine.code import extract, rename, check_rename
"""
from engine.code.check import CheckResult, check_rename
from engine.code.extract import extract
from engine.code.languages import LANGUAGES, CodeInputError, detect_language
from engine.code.model import Binding, Exclusion, Extraction, Identifier
from engine.code.rename import Rejection, RenameError, Renamer, rename, validate

__all__ = [
    "LANGUAGES",
    "Binding",
    "CheckResult",
    "CodeInputError",
    "Exclusion",
    "Extraction",
    "Identifier",
    "Rejection",
    "RenameError",
    "Renamer",
    "check_rename",
    "detect_language",
    "extract",
    "rename",
    "validate",
]
