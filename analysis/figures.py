"""Report figures with matplotlib (Figure objects, no pyplot, so no GUI backend is ever touched).

One style for every figure (`RC`, `Style`): each variant label keeps its colour and marker in
every figure (Okabe-Ito, colour-blind safe; the original in black) and the study's one variant
order; text is 7-8 pt at the size the figure is printed (3.5 in for one panel, 6.5 in for a
full-width figure: included at natural size, so no scaling shrinks the text); labels are short
(attack names, variant labels, "task · model"). No text is placed on data points, so nothing
can overprint; a test draws every figure and checks that no two text boxes overlap and none
leaves the canvas.

Each figure is saved as PDF (TrueType fonts embedded: pdf.fonttype 42, which IEEE/ACM checks
want), SVG and PNG. A figure with nothing to show (e.g. no model sizes in any manifest) is
left out rather than drawn empty.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import polars as pl
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

from analysis.tables import Inputs, attack_name

SINGLE_IN = 3.5  # one column of a two-column paper
DOUBLE_IN = 6.5  # the full text width (the report's is 6.69 in)
MIN_FONT_PT = 7.0
RC = {"pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "path", "font.size": 8, "axes.titlesize": 8,
      "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7, "legend.fontsize": 7,
      "axes.spines.top": False, "axes.spines.right": False, "axes.linewidth": 0.6,
      "xtick.major.width": 0.6, "ytick.major.width": 0.6, "grid.linewidth": 0.4, "grid.color": "#d9d9d9",
      "legend.frameon": False, "savefig.dpi": 150,
      "text.parse_math": False}  # a "$" in a model name is text, not mathtext
ORIGINAL_COLOUR = "#000000"
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442"]  # Okabe-Ito
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">"]


@dataclass
class FigureFile:
    name: str
    caption: str
    paths: dict[str, Path]  # format -> file
    width_in: float = SINGLE_IN


@dataclass
class Style:
    """Colour and marker of every variant label, fixed for the whole report."""

    labels: list[str]
    original: str | None

    @classmethod
    def of(cls, inputs: Inputs) -> Style:
        originals = inputs.variants.filter(pl.col("is_original"))["label"].unique().to_list()
        return cls(inputs.labels, originals[0] if len(originals) == 1 else None)

    def colour(self, label: str) -> str:
        others = [lab for lab in self.labels if lab != self.original]
        return ORIGINAL_COLOUR if label == self.original else PALETTE[others.index(label) % len(PALETTE)]

    def marker(self, label: str) -> str:
        return MARKERS[self.labels.index(label) % len(MARKERS)]

    def handles(self, labels: list[str]) -> list[Line2D]:
        return [Line2D([], [], ls="none", marker=self.marker(lab), color=self.colour(lab), markersize=5, label=short(lab))
                for lab in labels]


Built = tuple[str, str, Figure]  # name, caption, figure


def _styled(build: Callable[..., Built | None]) -> Callable[..., Built | None]:
    """Run a figure builder inside the report's rc settings (artists read them when created)."""
    def run(*args, **kwargs):
        with matplotlib.rc_context(RC):
            return build(*args, **kwargs)
    run.__name__ = build.__name__
    run.__doc__ = build.__doc__
    return run


def _grid(count: int, panel_height: float) -> tuple[Figure, list]:
    """One panel per attack: one column for a single attack, else two (full width)."""
    cols = 1 if count == 1 else 2
    rows = math.ceil(count / cols)
    width = SINGLE_IN if cols == 1 else DOUBLE_IN
    fig = Figure(figsize=(width, 0.45 + panel_height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    flat = axes.ravel().tolist()
    for ax in flat[count:]:
        ax.set_visible(False)
    return fig, flat[:count]


def _legend(fig: Figure, style: Style, labels: list[str], width: float) -> None:
    columns = max(1, min(len(labels), 4 if width > SINGLE_IN else 2))
    fig.legend(handles=style.handles(labels), loc="outside upper center", ncol=columns, handletextpad=0.3,
               columnspacing=1.2)


LABEL_CHARS = 30


def short(text: str, limit: int = LABEL_CHARS) -> str:
    """A label cut to `limit` characters with an ellipsis: a long model name must not squeeze the plot away."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _number_format(value: float, _position=None) -> str:
    return f"{value:g}"


def log_ticks(low: float, high: float) -> list[float]:
    """1-2-5 ticks between `low` and `high` (finer steps when that leaves fewer than three)."""
    for steps in ((1, 2, 5), (1, 1.5, 2, 3, 5, 7)):
        ticks = [k * 10.0 ** e for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
                 for k in steps if low <= k * 10.0 ** e <= high]
        if len(ticks) >= 3:
            break
    if len(ticks) > 7:
        ticks = ticks[::math.ceil(len(ticks) / 7)]
    return [float(f"{t:.3g}") for t in ticks]


def _present(inputs: Inputs, frame: pl.DataFrame) -> list[str]:
    present = set(frame["label"].to_list())
    return [lab for lab in inputs.labels if lab in present]


@_styled
def asr_size(inputs: Inputs, style: Style) -> Built | None:
    """ASR against model size, one panel per attack; a thin line joins each original to its variants."""
    sizes = inputs.variants.select("dataset", "task", "model", "compression", "size_mb")
    data = (inputs.metrics.join(sizes, on=["dataset", "task", "model", "compression"], how="left", nulls_equal=True)
            .filter(pl.col("size_mb").is_not_null() & (pl.col("size_mb") > 0) & pl.col("asr").is_not_null()))
    if data.height == 0:
        return None
    attacks = [a for a in inputs.attacks if a in set(data["attack"].to_list())]
    fig, axes = _grid(len(attacks), 1.9)
    low, high = float(data["size_mb"].min()), float(data["size_mb"].max())
    ticks = log_ticks(low / 1.25, high * 1.25)
    top = min(100.0, 10 * math.ceil((100 * data["asr"].max() + 5) / 10))
    for k, (ax, attack) in enumerate(zip(axes, attacks)):
        part = data.filter(pl.col("attack") == attack)
        for (_, _, base), group in part.group_by("dataset", "task", "base_model", maintain_order=True):
            origin = group.filter(pl.col("model") == base) if base is not None else group.head(0)
            if origin.height:
                x0, y0 = origin["size_mb"][0], 100 * origin["asr"][0]
                for r in group.filter(pl.col("model") != base).iter_rows(named=True):
                    ax.plot([x0, r["size_mb"]], [y0, 100 * r["asr"]], color="#b0b0b0", lw=0.6, zorder=1)
        for label in _present(inputs, part):
            chosen = part.filter(pl.col("label") == label)
            ax.scatter(chosen["size_mb"].to_numpy(), 100 * chosen["asr"].to_numpy(), s=20, marker=style.marker(label),
                       color=style.colour(label), edgecolors="white", linewidths=0.4, zorder=3)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(_number_format))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlim(low / 1.25, high * 1.25)
        ax.set_ylim(0, top)
        ax.grid(True, axis="y")
        ax.set_title(short(attack_name(attack), 20))
        if k % 2 == 0:
            ax.set_ylabel("ASR (%)")
        if k >= len(attacks) - (2 if len(attacks) > 1 else 1):
            ax.set_xlabel("Model size (MB, log scale)")
    _legend(fig, style, _present(inputs, data), fig.get_figwidth())
    caption = ("Attack success rate against model size, one panel per attack; grey lines join each original to its "
               "compressed variants.")
    return "asr-size", caption, fig


@_styled
def asr_heatmap(inputs: Inputs, style: Style) -> Built | None:
    """ASR of every (task · model) row and variant column, one panel per attack, values printed."""
    if inputs.metrics.height == 0:
        return None
    labels = _present(inputs, inputs.metrics)
    rows = [short(" · ".join(inputs.title(*g))) for g in inputs.groups]
    keys = {g: i for i, g in enumerate(inputs.groups)}
    attacks = inputs.attacks
    cols = len(attacks)
    label_in = 0.065 * max(len(short(lab)) for lab in labels)  # rotated x tick labels, 7 pt
    fig = Figure(figsize=(DOUBLE_IN if cols * len(labels) > 6 else SINGLE_IN, 0.5 + label_in + 0.27 * len(rows)),
                 layout="constrained")
    axes = fig.subplots(1, cols, squeeze=False, sharey=True).ravel().tolist()
    image = None
    for k, (ax, attack) in enumerate(zip(axes, attacks)):
        grid = np.full((len(rows), len(labels)), np.nan)
        for m in inputs.metrics.filter(pl.col("attack") == attack).iter_rows(named=True):
            row = keys.get((m["dataset"], m["task"], m["base_model"]))
            if row is not None and m["asr"] is not None and m["label"] in labels:
                grid[row, labels.index(m["label"])] = 100 * m["asr"]
        image = ax.imshow(grid, vmin=0, vmax=100, cmap="viridis", aspect="auto")
        for (i, j), value in np.ndenumerate(grid):
            if not np.isnan(value):
                ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=7,
                        color="black" if value > 55 else "white")
        ax.set_xticks(range(len(labels)), [short(lab) for lab in labels], rotation=90)
        ax.set_yticks(range(len(rows)), rows)
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_title(short(attack_name(attack), 20))
    colorbar = fig.colorbar(image, ax=axes, label="ASR (%)", fraction=0.05, pad=0.02, aspect=max(5, 3 * len(rows)))
    colorbar.set_ticks([0, 50, 100])
    caption = "Attack success rate (%) of each model (rows) and variant (columns), one panel per attack; blank: nothing attacked."
    return "asr-heatmap", caption, fig


def _dot_panels(inputs: Inputs, style: Style, column: str, scale: float, xlabel: str, xlim: tuple | None) -> Figure | None:
    """Dot plot, one panel per attack side by side: a row per task · model, one dot per variant
    with its 95 % interval."""
    data = inputs.metrics.filter(pl.col(column).is_not_null())
    if data.height == 0:
        return None
    attacks = [a for a in inputs.attacks if a in set(data["attack"].to_list())]
    labels = _present(inputs, data)
    rows = [short(" · ".join(inputs.title(*g))) for g in inputs.groups]
    keys = {g: i for i, g in enumerate(inputs.groups)}
    width = SINGLE_IN if len(attacks) == 1 else DOUBLE_IN
    fig = Figure(figsize=(width, 1.0 + len(rows) * (0.08 + 0.085 * len(labels))), layout="constrained")
    fig.get_layout_engine().set(wspace=0.08)
    axes = fig.subplots(1, len(attacks), squeeze=False, sharey=True, sharex=True).ravel().tolist()
    offsets = np.linspace(-0.28, 0.28, len(labels)) if len(labels) > 1 else np.zeros(1)
    for ax, attack in zip(axes, attacks):
        part = data.filter(pl.col("attack") == attack)
        for label, offset in zip(labels, offsets):
            chosen = [m for m in part.filter(pl.col("label") == label).iter_rows(named=True)
                      if (m["dataset"], m["task"], m["base_model"]) in keys]
            if not chosen:
                continue
            y = np.array([keys[(m["dataset"], m["task"], m["base_model"])] for m in chosen]) + offset
            x = scale * np.array([m[column] for m in chosen], dtype=float)
            bounds = [[m[f"{column}_{side}"] if m[f"{column}_{side}"] is not None else np.nan for m in chosen]
                      for side in ("low", "high")]
            low, high = (scale * np.array(b, dtype=float) for b in bounds)
            # clipped: at a rate of exactly 0 or 1 an interval bound can miss the value by a rounding error
            error = np.clip(np.vstack([np.nan_to_num(x - low), np.nan_to_num(high - x)]), 0.0, None)
            ax.errorbar(x, y, xerr=error, fmt=style.marker(label), color=style.colour(label), markersize=4,
                        elinewidth=0.8, capsize=0, markeredgecolor="white", markeredgewidth=0.3)
        ax.set_yticks(range(len(rows)), rows)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.tick_params(axis="y", length=0)
        if xlim:
            ax.set_xlim(*xlim)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=3, min_n_ticks=2))
        ax.grid(True, axis="x")
        ax.set_title(short(attack_name(attack), 20))
        ax.set_xlabel(xlabel if len(attacks) == 1 else "")
    if len(attacks) > 1:
        fig.supxlabel(xlabel, fontsize=8)
    _legend(fig, style, labels, fig.get_figwidth())
    return fig


@_styled
def robust_accuracy(inputs: Inputs, style: Style) -> Built | None:
    fig = _dot_panels(inputs, style, "robust_accuracy", 100.0, "Robust accuracy (%)", (0, 100))
    if fig is not None:
        for ax in fig.axes:
            ax.set_xticks([0, 50, 100])
    caption = "Robust accuracy (%) with its 95 % interval per model and variant, one panel per attack."
    return None if fig is None else ("robust-accuracy", caption, fig)


@_styled
def queries(inputs: Inputs, style: Style) -> Built | None:
    fig = _dot_panels(inputs, style, "queries_success", 1.0, "Queries per successful attack", None)
    caption = ("Mean model queries per successful attack with its 95 % bootstrap interval, one panel per attack "
               "(failures are not counted: they stop at the budget).")
    if fig is not None:
        for ax in fig.axes:
            if ax.get_visible():
                ax.set_xlim(left=0)
    return None if fig is None else ("queries", caption, fig)


@_styled
def validity(inputs: Inputs, style: Style) -> Built | None:
    """Share of successes that passed every check, per attack and variant (models pooled)."""
    checks = inputs.checks
    if checks.height == 0:
        return None
    pooled = checks.group_by("attack", "label").agg(pl.col("valid").sum(), pl.col("successes").sum())
    pooled = pooled.filter(pl.col("successes") > 0)
    if pooled.height == 0:
        return None
    attacks = [a for a in inputs.attacks if a in set(pooled["attack"].to_list())]
    labels = _present(inputs, pooled)
    width = SINGLE_IN if len(attacks) * len(labels) <= 16 else DOUBLE_IN
    fig = Figure(figsize=(width, 2.3), layout="constrained")
    ax = fig.subplots()
    bar = 0.8 / len(labels)
    values = {(r["attack"], r["label"]): 100 * r["valid"] / r["successes"] for r in pooled.iter_rows(named=True)}
    for j, label in enumerate(labels):
        xs = [i + (j - (len(labels) - 1) / 2) * bar for i, a in enumerate(attacks) if (a, label) in values]
        ys = [values[(a, label)] for a in attacks if (a, label) in values]
        ax.bar(xs, ys, bar * 0.9, color=style.colour(label), label=label)
    ax.set_xticks(range(len(attacks)), [short(attack_name(a), 14) for a in attacks])
    ax.set_ylim(0, 100)
    ax.set_ylabel("Valid successes (%)")
    ax.grid(True, axis="y")
    ax.set_axisbelow(True)
    fig.legend(handles=[Patch(color=style.colour(lab), label=short(lab)) for lab in labels],
               loc="outside upper center", ncol=min(len(labels), 4 if width > SINGLE_IN else 2))
    caption = ("Share of successful adversarial examples that passed every validity check that ran, per attack and "
               "variant (models pooled).")
    return "validity", caption, fig


BUILDERS = (asr_size, asr_heatmap, robust_accuracy, queries, validity)


def build_figures(inputs: Inputs) -> list[Built]:
    """Every figure of the report as (name, caption, Figure), in report order."""
    style = Style.of(inputs)
    return [built for builder in BUILDERS if (built := builder(inputs, style)) is not None]


def save(built: Built, out: Path) -> FigureFile:
    name, caption, fig = built
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    with matplotlib.rc_context(RC):
        for ext in ("pdf", "svg", "png"):
            paths[ext] = out / f"{name}.{ext}"
            fig.savefig(paths[ext], metadata=_metadata(ext))
    return FigureFile(name, caption, paths, float(fig.get_figwidth()))


def _metadata(ext: str) -> dict:
    # Fixed metadata keeps repeated reports byte-identical where the format allows it.
    return {"pdf": {"CreationDate": None}, "svg": {"Date": None}, "png": {}}[ext]


def make_figures(inputs: Inputs, out: Path) -> list[FigureFile]:
    return [save(built, out) for built in build_figures(inputs)]
