"""Report figures with matplotlib (Figure objects, no pyplot, so no GUI backend is ever touched).

Each figure is saved as PDF (TrueType fonts embedded: pdf.fonttype 42, which IEEE/ACM checks
want), SVG and PNG. A figure with nothing to show (e.g. no model sizes in any manifest) is
skipped with a note instead of drawing an empty axis.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import polars as pl
from matplotlib.figure import Figure

from analysis.comparisons import Ranking
from analysis.metrics import CHECKS

RC = {"pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "path", "font.size": 8, "axes.titlesize": 9}
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]  # Okabe-Ito


@dataclass
class FigureFile:
    name: str
    caption: str
    paths: dict[str, Path]  # format -> file


def _save(fig: Figure, out: Path, name: str, caption: str) -> FigureFile:
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    with matplotlib.rc_context(RC):
        for ext in ("pdf", "svg", "png"):
            paths[ext] = out / f"{name}.{ext}"
            fig.savefig(paths[ext], dpi=150 if ext == "png" else None, metadata=_metadata(ext))
    return FigureFile(name, caption, paths)


def _metadata(ext: str) -> dict:
    # Fixed metadata keeps repeated reports byte-identical where the format allows it.
    return {"pdf": {"CreationDate": None}, "svg": {"Date": None}, "png": {}}[ext]


def _panels(count: int, width: float = 3.4, height: float = 2.6) -> tuple[Figure, list]:
    cols = min(count, 3)
    rows = math.ceil(count / cols)
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[count:]:
        ax.set_visible(False)
    return fig, axes[:count]


def _attack_panels(data: pl.DataFrame) -> tuple[Figure, list[tuple]]:
    """One panel per attack: the figure and (axis, attack, that attack's rows) triples."""
    attacks = sorted(data["attack"].unique().to_list())
    fig, axes = _panels(len(attacks))
    parts = data.partition_by("attack", as_dict=True)
    return fig, [(ax, attack, parts[(attack,)]) for ax, attack in zip(axes, attacks)]


def asr_heatmap(metrics: pl.DataFrame, out: Path) -> FigureFile | None:
    attacks = sorted(metrics["attack"].unique().to_list())
    if not attacks:
        return None
    labels = metrics.sort(pl.col("label") != "none", "label")["label"].unique(maintain_order=True).to_list()
    models = metrics.select(pl.format("{}/{}", "task", "base_model").alias("m"))["m"].unique(maintain_order=True).to_list()
    fig, axes = _panels(len(attacks), 1.2 + 0.9 * len(labels), 0.9 + 0.45 * len(models))
    with matplotlib.rc_context(RC):
        for ax, attack in zip(axes, attacks):
            grid = np.full((len(models), len(labels)), np.nan)
            for r in metrics.filter(pl.col("attack") == attack).iter_rows(named=True):
                if r["asr"] is not None:
                    grid[models.index(f"{r['task']}/{r['base_model']}"), labels.index(r["label"])] = 100 * r["asr"]
            image = ax.imshow(grid, vmin=0, vmax=100, cmap="viridis", aspect="auto")
            for (i, j), value in np.ndenumerate(grid):
                if not np.isnan(value):
                    ax.text(j, i, f"{value:.0f}", ha="center", va="center", color="white" if value < 60 else "black")
            ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
            ax.set_yticks(range(len(models)), models)
            ax.set_title(f"ASR (%) – {attack}")
        fig.colorbar(image, ax=axes, shrink=0.8, label="ASR (%)")
    caption = "Attack success rate (%) per model (rows: task/original model) and compression setting (columns), one panel per attack; blank: no attacked examples."
    return _save(fig, out, "asr-heatmap", caption)


def pareto_front(sizes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats on both size and value (both minimised), by size."""
    order = np.lexsort((values, sizes))
    front, best = [], math.inf
    for i in order:
        if values[i] < best:
            front.append(i)
            best = values[i]
    return np.array(front, dtype=int)


def size_pareto(metrics: pl.DataFrame, variants: pl.DataFrame, out: Path) -> FigureFile | None:
    data = metrics.join(variants.select("dataset", "task", "model", "compression", "size_mb"),
                        on=["dataset", "task", "model", "compression"]).filter(pl.col("size_mb").is_not_null() & pl.col("asr").is_not_null())
    if data.height == 0:
        return None
    fig, panels = _attack_panels(data)
    with matplotlib.rc_context(RC):
        for ax, attack, part in panels:
            sizes, asr = part["size_mb"].to_numpy(), 100 * part["asr"].to_numpy()
            for k, (base,) in enumerate(sorted(part.select("base_model").unique().iter_rows())):
                mask = (part["base_model"] == base).to_numpy()
                ax.scatter(sizes[mask], asr[mask], s=18, color=PALETTE[k % len(PALETTE)], label=str(base), zorder=3)
            front = pareto_front(sizes, asr)
            ax.step(sizes[front], asr[front], where="post", color="grey", lw=1, ls="--", label="Pareto front")
            for i in front:
                ax.annotate(part["label"][int(i)], (sizes[i], asr[i]), fontsize=6, xytext=(3, 3), textcoords="offset points")
            ax.set_xscale("log")
            ax.set_xlabel("model size (MB, log)")
            ax.set_ylabel("ASR (%)")
            ax.set_title(attack)
            ax.legend(fontsize=6)
    caption = "Attack success rate against model size (MB, log axis), one panel per attack; the dashed step line is the Pareto front (smaller and more robust is better)."
    return _save(fig, out, "size-pareto", caption)


def cliques(ranking: Ranking, alpha: float) -> list[tuple[int, int]]:
    """Maximal runs (in rank order) of treatments whose pairwise adjusted p are all >= alpha."""
    order = np.argsort(ranking.mean_ranks)
    names = [ranking.treatments[i] for i in order]

    def same(a: str, b: str) -> bool:
        p = ranking.pairwise.get((a, b), ranking.pairwise.get((b, a)))
        return p is None or p >= alpha

    runs = []
    for i in range(len(names)):
        j = i
        while j + 1 < len(names) and all(same(names[k], names[j + 1]) for k in range(i, j + 1)):
            j += 1
        if j > i and not any(a <= i and j <= b for a, b in runs):
            runs.append((i, j))
    return runs


def cd_diagram(ranking: Ranking, alpha: float, out: Path) -> FigureFile | None:
    k = len(ranking.treatments)
    if k < 2 or any(not math.isfinite(r) for r in ranking.mean_ranks):
        return None
    order = np.argsort(ranking.mean_ranks)
    ranks = np.asarray(ranking.mean_ranks)[order]
    names = [ranking.treatments[i] for i in order]
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(6.8, 1.0 + 0.25 * math.ceil(k / 2)), layout="constrained")
        ax = fig.subplots()
        ax.set_xlim(0.8, k + 0.2)
        ax.set_ylim(-(math.ceil(k / 2) + 1), 1.2)
        ax.hlines(0, 1, k, color="black", lw=1)
        for r in range(1, k + 1):
            ax.vlines(r, 0, 0.25, color="black", lw=1)
            ax.text(r, 0.45, str(r), ha="center", va="bottom")
        half = math.ceil(k / 2)
        for i, (rank, name) in enumerate(zip(ranks, names)):
            left = i < half
            y = -(i + 1) if left else -(k - i)
            x_text = 0.85 if left else k + 0.15
            ax.plot([rank, rank, x_text], [0, y, y], color="black", lw=0.8)
            ax.text(x_text, y, f"{name} ({rank:.2f})", ha="right" if left else "left", va="center")
        for level, (i, j) in enumerate(cliques(ranking, alpha)):
            y = -0.35 - 0.25 * level
            ax.plot([ranks[i] - 0.03, ranks[j] + 0.03], [y, y], color="black", lw=3, solid_capstyle="round")
        ax.axis("off")
        ax.set_title(f"{ranking.outcome}: mean rank over {ranking.blocks} cells (1 = most robust)")
    caption = (f"Critical-difference diagram for {ranking.outcome}: mean rank of each compression setting across cells "
               f"(rank 1 = most robust); thick bars join settings whose pairwise Wilcoxon tests are not significant "
               f"after correction (adjusted p >= {alpha}).")
    return _save(fig, out, f"cd-{ranking.outcome.replace(' ', '-').lower()}", caption)


def query_distributions(records: pl.DataFrame, out: Path) -> FigureFile | None:
    data = records.filter(pl.col("success") & (pl.col("queries") > 0)).select("attack", "label", "queries")
    if data.height == 0:
        return None
    fig, panels = _attack_panels(data)
    with matplotlib.rc_context(RC):
        for ax, attack, part in panels:
            labels = sorted(part["label"].unique().to_list(), key=lambda s: (s != "none", s))
            groups = part.partition_by("label", as_dict=True)
            values = [groups[(lab,)]["queries"].to_numpy() for lab in labels]
            ax.boxplot(values, showfliers=False, widths=0.6)
            ax.set_xticks(range(1, len(labels) + 1), [f"{lab}\nn={len(v)}" for lab, v in zip(labels, values)], rotation=30, ha="right")
            ax.set_yscale("log")
            ax.set_ylabel("queries (log)")
            ax.set_title(attack)
    caption = "Model queries per successful attack (successes only; failures stop at the budget), log axis, per compression setting and attack; boxes: quartiles, whiskers: 1.5 IQR, outliers not drawn."
    return _save(fig, out, "queries", caption)


def validity_bars(checks: pl.DataFrame, out: Path) -> FigureFile | None:
    if checks.height == 0:
        return None
    # Pool the models of one compression setting: each rate over all their checked successes.
    sums = [pl.col(f"{c}_{part}").sum() for c in CHECKS for part in ("true", "checked")]
    pooled = checks.group_by("attack", "label").agg(*sums, pl.col("valid").sum(), pl.col("successes").sum())
    pooled = pooled.with_columns(
        *(pl.when(pl.col(f"{c}_checked") > 0).then(pl.col(f"{c}_true") / pl.col(f"{c}_checked")).alias(c) for c in CHECKS),
        (pl.col("valid") / pl.col("successes")).alias("valid_rate"),
    ).sort("attack", pl.col("label") != "none", "label")
    fig, panels = _attack_panels(pooled)
    names = [*CHECKS, "valid_rate"]
    with matplotlib.rc_context(RC):
        for ax, attack, part in panels:
            x = np.arange(part.height)
            width = 0.8 / len(names)
            for k, name in enumerate(names):
                values = 100 * part[name].cast(pl.Float64).fill_null(np.nan).to_numpy()
                label = "valid overall" if name == "valid_rate" else name.replace("_", " ")
                ax.bar(x + k * width, values, width, label=label, color=PALETTE[k])
            ax.set_xticks(x + 0.4 - width / 2, part["label"].to_list(), rotation=30, ha="right")
            ax.set_ylim(0, 130)
            ax.set_ylabel("% of successes")
            ax.set_title(attack)
        panels[0][0].legend(fontsize=6, loc="upper left", ncol=3)
    caption = ("Validity of successful adversarial examples per attack and compression setting (models pooled): share "
               "passing each check over the successes where it ran (missing bar: never checked), and the share valid overall.")
    return _save(fig, out, "validity", caption)
