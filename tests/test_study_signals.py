"""`engine study` stopped from outside (issue 14): SIGKILL, SIGTERM and Ctrl-C of the driver leave
no worker running, SIGTERM and Ctrl-C print one line (no traceback), and a second driver on a
running cell fails that cell naming the first; the study then resumes to the same result."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.locks import exclusive
from engine.study.config import load_config
from engine.study.executor import LOCK_NAME
from engine.study.plan import expand, is_done
from tests.study_fakes import fake_options
from tests.test_study import SMALL, records, study, write

ROOT = Path(__file__).resolve().parents[1]
SLOW = SMALL.replace("n = 6", "n = 40").replace("mhm_iterations = 5", "mhm_iterations = 5\ndelay = 0.1")

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for the worker processes")


def children(pid: int) -> set[int]:
    """Every live descendant of `pid` (read from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    still = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if state[state.rindex(")") + 2] != "Z":
            still.add(pid)
    return still


def start(tmp_path: Path, text: str = SLOW) -> tuple[subprocess.Popen, Path]:
    """The study driver with fake stages and two worker processes, in its own process group; its
    output goes to files (a pipe would stay open as long as any orphaned worker holds it)."""
    config = write(tmp_path, text)
    command = [sys.executable, "-m", "tests.study_fakes", "--config", str(config), "--out", str(tmp_path / "out"),
               "--no-progress", "--executor", "process", "--jobs", "2"]
    with open(tmp_path / "driver.out", "w") as out, open(tmp_path / "driver.err", "w") as err:
        driver = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=err, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # until two attack cells write records
        written = list((tmp_path / "out").glob("cells/attack/*/logs/records.jsonl"))
        if len(written) >= 2 and all(path.read_text().count("\n") >= 2 for path in written[:2]):
            return driver, config
        time.sleep(0.05)
    driver.kill()
    pytest.fail(f"the study never got to its attack cells: {(tmp_path / 'driver.err').read_text()}")


def gone_within(pids: set[int], seconds: float = 10) -> set[int]:
    """Those of `pids` still running after `seconds` (killed, so a failing test leaves no orphan)."""
    deadline = time.monotonic() + seconds
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = alive(pids)
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    return survivors


def finish_and_check(tmp_path: Path, config: Path) -> None:
    """Run the same study to the end: every cell done, every attack with each example once."""
    assert study(tmp_path, config) == 0
    plan = expand(load_config(config, fake_options))
    for cell in plan.cells.values():
        assert is_done(tmp_path / "out", cell), cell.name
        if cell.kind == "attack":
            assert records(tmp_path / "out" / cell.output) == [f"ex{i:03d}" for i in range(40)]


def test_sigkill_of_the_driver_kills_its_workers(tmp_path):
    driver, config = start(tmp_path)
    workers = children(driver.pid)
    assert len(workers) >= 2
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    assert not gone_within(workers), "worker processes outlived their killed driver"
    finish_and_check(tmp_path, config)


@pytest.mark.parametrize("signum, code, words", [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "Ctrl-C")])
def test_sigterm_and_ctrl_c_stop_the_workers_with_one_line(tmp_path, signum, code, words):
    driver, config = start(tmp_path)
    workers = children(driver.pid)
    if signum == signal.SIGINT:
        os.killpg(driver.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
    else:
        driver.send_signal(signal.SIGTERM)
    driver.wait(timeout=60)
    err = (tmp_path / "driver.err").read_text()
    assert driver.returncode == code, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().splitlines()[-1] == (f"engine study: stopped by {words}{' (SIGINT)' if code == 130 else ''}; "
                                            "finished cells are kept; run the same command again to continue")
    assert not gone_within(workers), "worker processes outlived the stopped study"
    finish_and_check(tmp_path, config)


def test_a_cell_another_driver_runs_fails_naming_it_and_the_others_go_on(tmp_path, capsys):
    config = write(tmp_path, SMALL)
    plan = expand(load_config(config, fake_options))
    cell = plan.cells["attack:stdlib:tiny:prune:mhm:s0"]
    folder = tmp_path / "out" / cell.directory
    folder.mkdir(parents=True)
    with exclusive(folder / LOCK_NAME, "held by the test"):
        assert study(tmp_path, config) == 1
    out = capsys.readouterr()
    assert f"failed: {cell.name}: study cell {cell.name} is in use by pid {os.getpid()}" in out.err
    assert not (folder / "logs").exists()
    done = [c.name for c in plan.cells.values() if is_done(tmp_path / "out", c)]
    assert len(done) == len(plan.cells) - 2  # that cell and the report waiting for it
    assert study(tmp_path, config) == 0
    assert json.loads((folder / "DONE.json").read_text())
