"""Builtin datasets (`--dataset`, a study's `builtin`), built offline from local sources: one module
each, declaring `BUILTINS` (`engine.datasets.spec.Builtin`); `engine.datasets.registry` finds them all.
"""
