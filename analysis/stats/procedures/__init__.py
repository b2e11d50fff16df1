"""The statistical tests `analysis` can run: one module per test family, each declaring
`TESTS = (StatTest(...),)` (`analysis.stats.core`); `analysis.stats.TESTS` finds them all. Which
test fills which role (`analysis.stats.ROLES`) is chosen with `analysis report|stats --<role> NAME`.
"""
