"""Every compression method `engine compress` can apply: the one list the command's `--method`,
`--all`, the parent checks, the study config's `method` key and the docs table read.

A method is one `Method` entry here plus its implementation: a *maker* `(parent, spec, dataset,
options) -> dict | None` that writes the variant's model files and returns what its manifest's
`compression` block records (with a `report`), or None when stopped early on purpose; and a
*check* `(params) -> None` that raises a `UserError` before anything is written. Both are named
by dotted path ("module:function") so that reading this list (study configs, `--help`) imports
no torch. Its parameters are the `engine compress` options listed in `options` (their dests).

    Method("harden", "robust fine-tuning of any variant", "engine.compress.robust:make_harden",
           "engine.compress.robust:check_harden", options=(...), on_compressed=True, trains=True)

is all a new method needs here (see docs/contributing.md).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from engine.errors import UserError


@dataclass(frozen=True)
class Method:
    name: str  # the --method value and the manifest's compression.method
    description: str
    make: str  # "module:function": (parent, spec, dataset, options) -> compression block, or None if stopped
    check: str  # "module:function": (params) -> None; a UserError names the bad option
    options: tuple[str, ...] = ()  # `engine compress` option dests that become the method's parameters
    float_input: bool = False  # needs float weights: refused on a parent whose weights are fixed (int8)
    fixed_weights: bool = False  # its variants' weights cannot be pruned or quantized again
    on_compressed: bool = False  # made for compressed parents: applies to them without --allow-compressed
    trains: bool = False  # trains with epoch checkpoints: a half-trained --out is resumed, not refused
    standard: dict[str, Any] | None = field(default=None, hash=False)  # its `--all` variant's parameters

    def maker(self) -> Callable:
        return _resolve(self.make)

    def checker(self) -> Callable:
        return _resolve(self.check)


def _resolve(path: str) -> Callable:
    module, _, name = path.partition(":")
    return getattr(import_module(module), name)


DISTILL_OPTIONS = ("target_mb", "layers", "hidden", "heads", "intermediate", "vocab_size", "temperature", "hard_weight",
                   "unlabelled", "epochs", "batch_size", "lr", "patience", "seed",
                   "robust", "renamings", "rename_share", "consistency", "robust_targets", "robust_warmup", "adversarial")
HARDEN_OPTIONS = ("renamings", "rename_share", "consistency", "adversarial", "epochs", "lr", "batch_size", "patience",
                  "seed")

METHODS: dict[str, Method] = {method.name: method for method in (
    Method("prune", "global L1 magnitude pruning of the encoder's linear layers, or whole attention heads",
           "engine.compress.variants:make_prune", "engine.compress.variants:check_prune",
           options=("ratio", "scope", "structured", "importance_examples"), float_input=True,
           standard={"ratio": 0.4, "scope": "linear", "structured": None}),
    Method("quantize", "dynamic int8 linear layers for the CPU, or weights cast to fp16/bf16 for GPUs",
           "engine.compress.variants:make_quantize", "engine.compress.variants:check_quantize",
           options=("dtype",), float_input=True, fixed_weights=True, standard={"dtype": "int8"}),
    Method("distill", "knowledge distillation into a small student of a target size on disk",
           "engine.compress.variants:make_distill", "engine.compress.variants:check_distill",
           options=DISTILL_OPTIONS, trains=True, standard={"target_mb": 3.0}),
    Method("harden", "robust fine-tuning of any variant on renamed (and adversarial) training programs; int8 via "
           "its float parent, pruned with the mask fixed",
           "engine.compress.harden:make_harden", "engine.compress.harden:check_harden",
           options=HARDEN_OPTIONS, on_compressed=True, trains=True),
)}


def find(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise UserError(f"--method {name!r}: use one of {', '.join(METHODS)}") from None


def meaningful_after(parent_method: str, name: str) -> bool:
    """Whether `name` may be applied to a model compressed with `parent_method` (with --allow-compressed):
    int8 weights can be neither pruned nor quantized again; any model can teach a student."""
    spec = find(name)
    parent = METHODS.get(parent_method)
    if parent is None:  # a method this version does not know: nothing is known to be meaningful on it
        return False
    return not (parent.fixed_weights and spec.float_input)
