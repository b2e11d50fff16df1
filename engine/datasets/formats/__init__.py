"""File formats `engine` reads (`--data-format`, a study's `loader`): one module each, declaring
`FORMATS` (`engine.datasets.spec.Format`); `engine.datasets.registry` finds them all. Shared
reading helpers are in `engine.datasets.loaders`. See docs/contributing.md.
"""
