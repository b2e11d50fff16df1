"""Compression: pruning, int8 quantization and knowledge distillation of a victim (`engine compress`).

Every method writes an ordinary model directory (so `Victim.load(DIR)` needs no flag) whose
manifest records what was done, to which parent, and what it cost or saved, measured side by
side with the parent in the same run. Modules: `prune`, `quantize`, `distill` (the methods),
`measure` (size, parameters, latency, throughput, test metrics, agreement), `variants`
(parent checks, output directories, manifests, `--all`). Contract: docs/compression.md.
"""
