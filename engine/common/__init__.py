"""What `engine` and `analysis` share, below both: the only part of `engine` that `analysis` imports.

- `logschema`: the per-example attack record (the contract between the two programs);
- `errors`: `UserError`, the error a user can fix (one line, no traceback);
- `cli`: parser assembly and the guarded run every command shares (errors, Ctrl-C, full disks);
- `metrics`: classification metrics (engine writes them into manifests, analysis recomputes them
  from records);
- `reports`: the formats `analysis report` writes (the study's `report` key names them too);
- `int8`: the file format of dynamically quantized models (`engine.models` reads it,
  `engine.compress.quantize` writes it; imports torch when called, so analysis never touches it).

Rules, checked by `tests/test_boundaries.py`: modules here import nothing from `engine` outside
`engine.common`, and nothing from `analysis`; `analysis` imports nothing from `engine` outside
`engine.common`; and no module imports another that (directly or not) imports it back.
"""
