"""Model manifests: what a model directory is, how it was made, and with which libraries.

Every directory the engine writes (a fine-tuned classifier, a masked LM, later a compressed
variant) holds a `manifest.json`. The fields common to all of them are filled here:
`manifest_version`, `kind`, `created`, library `versions`, `parameters`, `size_mb` and
`files` (SHA-256 and bytes of every file in the directory, the manifest itself excepted),
and `fingerprint` (one hash of those files), so a result can be traced back to exact weights.
Field meanings: docs/models.md.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from engine.errors import UserError

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
# Sub-directories that are working state, not part of the model (hashed or sized they would
# make two copies of the same model look different).
_SKIPPED_DIRS = {"checkpoint", ".cache"}


def library_versions() -> dict[str, str | None]:
    """Versions of the libraries that decide what a model computes."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in ("torch", "transformers", "tokenizers", "safetensors", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    try:
        versions["engine"] = metadata.version("code-robustness-toolkit")
    except metadata.PackageNotFoundError:
        versions["engine"] = None
    return versions


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def model_files(directory: str | os.PathLike) -> list[Path]:
    """Files that make up the model in `directory` (sorted), without the manifest and checkpoints."""
    root = Path(directory)
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if not path.is_file() or relative.parts[0] in _SKIPPED_DIRS or relative.name == MANIFEST_NAME:
            continue
        if relative.name.endswith(".tmp"):
            continue
        found.append(path)
    return found


def file_hashes(directory: str | os.PathLike) -> dict[str, dict[str, Any]]:
    root = Path(directory)
    return {
        path.relative_to(root).as_posix(): {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        for path in model_files(root)
    }


def model_fingerprint(files: dict[str, dict[str, Any]]) -> str:
    """One short hash of a model's files (`file_hashes` output): equal fingerprints, equal weights,
    config and tokenizer. Compressed variants name their parent by it."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\0{files[name]['sha256']}\n".encode())
    return digest.hexdigest()[:16]


def size_on_disk_mb(directory: str | os.PathLike) -> float:
    """Megabytes (10^6 bytes) of the model's files: weights, tokenizer and config."""
    return round(sum(path.stat().st_size for path in model_files(directory)) / 1e6, 3)


def count_parameters(model) -> int:
    """Number of parameters (shared/tied tensors counted once)."""
    seen: set[int] = set()
    total = 0
    for parameter in model.parameters():
        if id(parameter) in seen:
            continue
        seen.add(id(parameter))
        total += parameter.numel()
    return int(total)


def utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def write_manifest(directory: str | os.PathLike, fields: dict[str, Any], *, model=None) -> dict[str, Any]:
    """Write `manifest.json` into `directory`: `fields` plus the common fields, returned as a dict.

    Call it last, after the weights, config and tokenizer are saved: sizes and hashes are read
    from the directory as it is then.
    """
    root = Path(directory)
    manifest: dict[str, Any] = {"manifest_version": MANIFEST_VERSION, "kind": fields.get("kind", "model"),
                                "created": utc_now()}
    manifest.update(fields)
    manifest["versions"] = library_versions()
    if model is not None:
        manifest["parameters"] = count_parameters(model)
    manifest["size_mb"] = size_on_disk_mb(root)
    manifest["files"] = file_hashes(root)
    manifest["fingerprint"] = model_fingerprint(manifest["files"])
    temporary = root / (MANIFEST_NAME + ".tmp")
    temporary.write_text(json.dumps(manifest, indent=2, sort_keys=False, default=_json_default) + "\n", encoding="utf-8")
    os.replace(temporary, root / MANIFEST_NAME)
    return manifest


def read_manifest(directory: str | os.PathLike, *, required: bool = False) -> dict[str, Any] | None:
    """The manifest of a model directory; None for directories without one (third-party models)."""
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        if required:
            raise UserError(f"{directory}: no {MANIFEST_NAME}; is this a directory written by `engine train`?")
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: cannot read the manifest ({err})") from None


def verify_files(directory: str | os.PathLike) -> list[str]:
    """Files whose hash or presence differs from the manifest (empty when the directory is intact)."""
    manifest = read_manifest(directory, required=True)
    problems = []
    current = file_hashes(directory)
    for name, recorded in (manifest.get("files") or {}).items():
        if name not in current:
            problems.append(f"{name}: missing")
        elif current[name]["sha256"] != recorded["sha256"]:
            problems.append(f"{name}: content differs from the manifest")
    return problems


def _json_default(value: Any):
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
