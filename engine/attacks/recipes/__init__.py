"""The attack recipes: one module per recipe family, each declaring `RECIPES` (`engine.attacks.recipe`).

`engine.attacks.registry` imports every module here; adding a module adds its recipes to
`engine attack`, the study config and the tests. See docs/contributing.md.
"""
