"""Whole studies in one command: `engine study`.

A study is a grid (datasets × models × compression variants × attacks × seeds) described by a
TOML file. The package turns it into cells and runs them:

- `config`: load and validate the TOML (unknown keys, types and allowed values checked, errors
  name the key and the file);
- `plan`: expand the grid into cells with dependencies (train → compress → substitutes → attack
  → report), each keyed by a hash of its resolved configuration, and read which are done;
- `stages`: the command line each cell runs (`engine train …`, `engine attack …`,
  `python -m analysis report …`) and the runner that executes it;
- `executor`: where cells run: in this process, in a pool of worker processes, or on Ray;
- `estimate`: the cost of a plan from victim throughput measured on this machine;
- `run`: the scheduler loop, progress bars, the summary table and the final report.

Stages are invoked only through their command lines, so this package depends on no stage's
Python API, and `engine` never imports `analysis`. See docs/study.md.
"""
