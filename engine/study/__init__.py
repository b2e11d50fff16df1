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
- `estimate`: each cell's expected cost and its bound, and the wall time on K workers, from
  `shapes` (model shapes without a network), `throughput` (seconds per forward pass, measured
  once per machine and shape, cached), `priors` (published queries per example) and `pilot`
  (`--pilot N`: a few examples of every attack cell, measured); `plan_text` prints the plan;
- `run`: the scheduler loop, progress bars, the summary table and the final report.

Stages are invoked only through their command lines, so this package depends on no stage's
Python API, and `engine` never imports `analysis`. See docs/study.md.
"""
