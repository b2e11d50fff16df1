"""Readers for the real data in ../shared/data used by benchmarks and integration tests.

Deliberately minimal: the dataset layer (`engine data`) owns the full loaders; this module
only turns the two shared files into (id, language, code) triples so that the language layer
can be measured on code nobody on the team wrote.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from engine.datasets.gcj_text import decode_gcj_code

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEVIGN = SHARED_DATA / "devign" / "test_subs_0_400.jsonl"
GCJ = [SHARED_DATA / "gcjpy" / "train.txt", SHARED_DATA / "gcjpy" / "valid.txt"]


def available() -> bool:
    return DEVIGN.is_file() and all(path.is_file() for path in GCJ)


def devign_functions() -> Iterator[tuple[str, str, str]]:
    with DEVIGN.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            record = json.loads(line)
            yield f"devign:{record['idx']}", "c", record["func"]


def gcj_programs() -> Iterator[tuple[str, str, str]]:
    for path in GCJ:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                code, _, _label = line.rstrip("\n").rpartition(" <CODESPLIT> ")
                yield f"gcj:{path.stem}:{number}", "python", decode_gcj_code(code)


# No Java corpus ships in ../shared: the JDK's own sources (real code nobody on the team wrote)
# stand in. Every method and constructor with a body of the top-level files of these packages,
# in file order, is one program.
JDK_HOMES = "/usr/lib/jvm"
JDK_PACKAGES = ("java.base/java/util/", "java.base/java/io/", "java.base/java/lang/")


def jdk_source() -> Path | None:
    """`$JAVA_HOME/lib/src.zip`, else the first installed JDK under /usr/lib/jvm that has its sources."""
    import os

    homes = [os.environ["JAVA_HOME"]] if os.environ.get("JAVA_HOME") else []
    homes += sorted(str(path) for path in Path(JDK_HOMES).glob("*")) if Path(JDK_HOMES).is_dir() else []
    for home in homes:
        for candidate in (Path(home) / "lib" / "src.zip", Path(home) / "src.zip"):
            if candidate.is_file():  # is_file follows links: a dangling one is skipped
                return candidate
    return None


def jdk_methods(limit: int = 600) -> Iterator[tuple[str, str, str]]:
    """The first `limit` methods and constructors (with a body) of the JDK's java.util, java.io
    and java.lang top-level files, taken in turn from each package so that all three are sampled."""
    import zipfile

    from engine.code.parsing import parse

    path = jdk_source()
    if path is None:
        return
    with zipfile.ZipFile(path) as archive:
        per_package = []
        for package in JDK_PACKAGES:
            names = sorted(
                n for n in archive.namelist()
                if n.startswith(package) and n.endswith(".java") and "/" not in n[len(package):]
            )
            per_package.append(_methods_of(archive, names, parse))
        taken = 0
        while taken < limit and per_package:
            for methods in list(per_package):
                item = next(methods, None)
                if item is None:
                    per_package.remove(methods)
                    continue
                yield item
                taken += 1
                if taken >= limit:
                    return


def _methods_of(archive, names, parse) -> Iterator[tuple[str, str, str]]:
    for name in names:
        source = archive.read(name)
        stack = [parse(source, "java").root]
        while stack:
            node = stack.pop()
            if node.type in ("method_declaration", "constructor_declaration") and node.child_by_field_name("body"):
                code = source[node.start_byte:node.end_byte].decode("utf-8")
                yield f"jdk:{name}:{node.start_point[0] + 1}", "java", code
                continue
            stack.extend(reversed(node.named_children))
