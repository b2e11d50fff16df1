"""Compression benchmark: one table per victim, every variant against its parent, measured in one run.

Makes the three standard variants of a victim (`engine compress --all`: prune 40 % global L1,
dynamic int8, a 3 MB distilled student) unless they exist already, then prints, from the
variants' manifests (where the parent was measured side by side with them in the same run):

    variant | size MB | size ratio | latency ms (batch 1) | latency ratio | throughput/s | throughput ratio
            | accuracy | Δ accuracy | F1 | Δ F1 | agreement

Ratios are variant / parent (latency below 1 and throughput above 1 are faster). When the victim
directory does not exist, `--base` trains it first on `stdlib-attribution`.

    .venv/bin/python bench/compression.py --model runs/bench/small --base scratch:small --threads 1
    .venv/bin/python bench/compression.py --model runs/bench/minilm --base minilm --threads 1
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.compress.variants import Options, compress, standard_specs, write_index  # noqa: E402
from engine.datasets.registry import load_dataset  # noqa: E402
from engine.device import set_threads  # noqa: E402
from engine.manifest import read_manifest  # noqa: E402


def table(out: Path) -> str:
    """The markdown table of the variants in `out` (written by `engine compress --all`)."""
    index = json.loads((out / "variants.json").read_text(encoding="utf-8"))
    manifests = {name: read_manifest(out / sub) for name, sub in index["variants"].items()}
    parent = next(iter(manifests.values()))["measurement"]["parent"]
    rows = [("parent", parent, None)] + [(name, m["measurement"]["variant"], m) for name, m in manifests.items()]
    lines = ["| variant | size MB | size ratio | latency ms (bs 1) | latency ratio | throughput/s (best bs) | "
             "throughput ratio | accuracy | Δ accuracy | F1 | Δ F1 | agreement |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, m, _ in rows:
        acc, f1 = m["test_metrics"]["accuracy"], m["test_metrics"]["f1"]
        lines.append(
            f"| {name} | {m['size_mb']:.2f} | {m['size_mb'] / parent['size_mb']:.3f} | {m['latency_ms_batch1']:.2f} | "
            f"{m['latency_ms_batch1'] / parent['latency_ms_batch1']:.3f} | {m['throughput_per_s']:.1f} "
            f"(bs {m['best_batch_size']}) | {m['throughput_per_s'] / parent['throughput_per_s']:.3f} | {acc:.4f} | "
            f"{acc - parent['test_metrics']['accuracy']:+.4f} | {f1:.4f} | {f1 - parent['test_metrics']['f1']:+.4f} | "
            f"{'—' if m['agreement'] is None else format(m['agreement'], '.4f')} |")
    notes = []
    for name, _, manifest in rows[1:]:
        compression, report = manifest["compression"], manifest["compression"]["report"]
        if compression["method"] == "prune":
            notes.append(f"{name}: {report['overall']:.1%} of {report['weights']:,} encoder linear weights zero; "
                         f"non-zero parameters {manifest['nonzero_parameters']:,} of {manifest['parameters']:,}")
        elif compression["method"] == "quantize":
            notes.append(f"{name}: {len(report['int8_modules'])} linear layers int8 ({report['int8_weights']:,} weights); "
                         f"{report['float_parameters']:,} parameters float32 (embeddings, LayerNorms, biases)")
        else:
            shape = report["architecture"]
            notes.append(f"{name}: {shape['layers']} layers, hidden {shape['hidden']}, {shape['heads']} heads, "
                         f"intermediate {shape['intermediate']}, vocabulary {manifest['base_info']['vocab_size']}; "
                         f"{manifest['parameters']:,} parameters; {report['train_examples']} training programs, "
                         f"T = {report['temperature']}")
    measurement = next(iter(manifests.values()))["measurement"]
    notes.append(f"timing: {measurement['timing_examples']} test programs, batch sizes {measurement['batch_sizes']}, "
                 f"best of {measurement['repeats']}, {measurement['torch_threads']} torch thread(s), "
                 f"device {measurement['device']}; metrics on {parent['test_metrics']['n']} test examples")
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {note}" for note in notes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the victim directory (trained first with --base if absent)")
    parser.add_argument("--base", default="scratch:small", help="base to train the victim with when it is absent")
    parser.add_argument("--lr", type=float, default=None, help="learning rate for training the victim (default: engine's)")
    parser.add_argument("--out", default=None, help="variants directory (default: MODEL-variants)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--timing-examples", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--distill-epochs", type=int, default=10)
    args = parser.parse_args()
    set_threads(args.threads)
    model = Path(args.model)
    out = Path(args.out) if args.out else model.with_name(model.name + "-variants")
    dataset = load_dataset("stdlib-attribution", progress=False)
    if not (model / "manifest.json").is_file():
        from engine.train import TrainConfig, train

        train(dataset, TrainConfig(base=args.base, lr=args.lr, device="cpu"), model)
    if not (out / "variants.json").is_file():
        specs = standard_specs(out, {"epochs": args.distill_epochs})
        manifests = compress(model, specs, dataset,
                             Options(device="cpu", timing_examples=args.timing_examples, repeats=args.repeats))
        write_index(out, specs, manifests)
    print(f"## {model} ({read_manifest(model).get('base')})\n")
    print(table(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
