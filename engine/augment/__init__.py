"""Renamed training programs: random alpha-equivalent renamings (`renamings`) and the `engine augment`
stage that attacks or randomly renames a training split and writes the results as a dataset (`stage`).

Both robust compression methods (`engine compress --method harden`, `--method distill --robust`)
draw their renamed programs from here, so every renamed program a model is trained on has passed
the language layer's alpha-equivalence check (`engine.code.check_rename`). See
docs/robust-compression.md.
"""
