"""The sandbox against programs written to escape it (issue 14): each hostile program of the audit
must fail to reach anything outside its own working directory and must leave no process behind.
Where this machine cannot make namespaces, the tests skip saying "no namespaces here"."""
from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.datasets import sandbox
from engine.datasets.sandbox import FAILED, PASSED, TIMEOUT, Limits, run_python

FAST = Limits(timeout_s=10.0, memory_bytes=512 << 20)
FORKING = Limits(timeout_s=10.0, memory_bytes=512 << 20, processes=4096)


@pytest.fixture(scope="module", autouse=True)
def namespaces():
    found = sandbox.isolation()
    if found.kind != "namespaces":
        reason = f"no namespaces here ({found.reason})"
        print(reason)
        pytest.skip(reason)


def token() -> str:
    return f"crt{random.randrange(10**9, 10**10)}"


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def none_left(marker: str, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not processes_with(marker)


def test_it_cannot_write_outside_its_directory_and_its_directory_is_bounded(tmp_path):
    mark = token()
    targets = [str(tmp_path / f"{mark}-a"), f"/tmp/{mark}-b", f"/work/{mark}-c", str(Path.home() / f"{mark}-d"),
               f"/{mark}-e"]
    program = f"""
import os
for target in {targets!r} + [os.path.join(os.path.dirname(os.getcwd()), "{mark}-f")]:
    try:
        with open(target, "wb") as handle:
            handle.write(b"x" * (15 << 20))
        print("WROTE", target)
    except OSError as err:
        print("refused", target, err.strerror)
written = 0
try:
    for index in range(8):
        with open(f"inside-{{index}}", "wb") as handle:
            handle.write(b"y" * (15 << 20))
        written += 1
except OSError as err:
    print("inside stopped:", err.strerror)
print("inside files", written)
"""
    result = run_python(program, FAST)
    assert "WROTE" not in result.stdout, result.stdout
    assert result.stdout.count("refused") == 6
    assert "inside files 4" in result.stdout and "No space left on device" in result.stdout  # 64 MiB in all
    for target in targets:
        assert not Path(target).exists()
    assert not list(Path(tmp_path.parent).glob(f"{mark}*")) and not list(Path("/tmp").glob(f"{mark}*"))


def test_it_sees_no_file_outside_the_system_libraries_and_python(tmp_path):
    secret = token()
    (tmp_path / "secret.txt").write_text(secret)
    program = f"""
import os
for path in ["/etc/passwd", "/etc/shadow", "/etc/hostname", {str(tmp_path / 'secret.txt')!r}]:
    try:
        print(path, open(path).read()[:200])
    except OSError as err:
        print("unreadable", path, err.strerror)
for folder in ["/", "/home", "/root", "/work", "/tmp", "/etc"]:
    try:
        print(folder, sorted(os.listdir(folder)))
    except OSError as err:
        print("unlistable", folder, err.strerror)
import json, math
print("stdlib ok", math.sqrt(16))
"""
    result = run_python(program, FAST)
    assert result.status == PASSED, result.stderr
    assert secret not in result.stdout and "root:x:0:0" not in result.stdout
    assert result.stdout.count("unreadable") == 4 and "stdlib ok 4.0" in result.stdout
    assert "/ ['bin', 'dev', 'etc', 'lib'" in result.stdout and "'work'" not in result.stdout


def test_it_cannot_read_the_parents_environment(tmp_path):
    """The secret is in the environment the parent started with (what /proc/PID/environ shows)."""
    secret = token()
    program = """
import os
seen = []
for pid in [os.getppid(), 1] + [int(p) for p in os.listdir("/proc") if p.isdigit()]:
    try:
        seen.append(open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace"))
    except OSError as err:
        seen.append(f"{pid}: {err.strerror}")
print(os.getppid(), len(seen), seen)
print(sorted(os.environ))
"""
    (tmp_path / "program.py").write_text(program)
    parent = (f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})\n"
              "from engine.datasets.sandbox import Limits, run_python\n"
              f"result = run_python(open({str(tmp_path / 'program.py')!r}).read(), Limits(timeout_s=10))\n"
              "print(result.status, result.stdout)\n")
    done = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "CRT_SANDBOX_TEST_SECRET": secret})
    assert done.stdout.startswith("passed"), done.stdout + done.stderr
    assert secret not in done.stdout and "CRT_SANDBOX_TEST_SECRET" not in done.stdout


def test_it_has_no_network():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.setblocking(False)
    tcp, udp = listener.getsockname()[1], receiver.getsockname()[1]
    program = f"""
import socket
def attempt(name, action):
    try:
        action()
        print("REACHED", name)
    except OSError as err:
        print("blocked", name, err.strerror)
def tcp(address):
    with socket.create_connection(address, timeout=2) as s:
        s.sendall(b"hello")
attempt("loopback tcp", lambda: tcp(("127.0.0.1", {tcp})))
attempt("outbound tcp", lambda: tcp(("192.0.2.1", 80)))
attempt("outbound tcp by name", lambda: tcp(("example.com", 80)))
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"hello", ("127.0.0.1", {udp}))
    s.sendto(b"hello", ("192.0.2.1", 53))
attempt("udp", udp)
"""
    try:
        result = run_python(program, FAST)
        time.sleep(0.2)
        with pytest.raises(BlockingIOError):
            listener.accept()
        with pytest.raises(BlockingIOError):
            receiver.recvfrom(100)
    finally:
        listener.close()
        receiver.close()
    assert "REACHED loopback tcp" not in result.stdout and "REACHED outbound" not in result.stdout, result.stdout
    assert result.stdout.count("blocked") >= 3


def test_children_it_forks_die_when_it_ends():
    mark = f"{random.randrange(100, 999)}.{random.randrange(10**6, 10**7)}"  # a unique sleep duration
    program = f"""
import os
started = 0
for _ in range(20):
    try:
        pid = os.fork()
    except OSError as err:
        print("fork refused", err.strerror)
        break
    if pid == 0:
        os.execv("/usr/bin/sleep", ["sleep", "{mark}"])
    started += 1
print("started", started)
"""
    result = run_python(program, FORKING)
    assert result.status == PASSED, result.stderr
    assert "started 20" in result.stdout  # they did start: the test shows the kill, not a refusal
    assert none_left(mark), f"children outlived the run: {processes_with(mark)}"


def test_a_setsid_background_process_dies_at_the_timeout():
    mark = f"{random.randrange(100, 999)}.{random.randrange(10**6, 10**7)}"
    program = f"""
import os
if os.fork() == 0:
    os.setsid()
    os.execv("/usr/bin/sleep", ["sleep", "{mark}"])
print("daemon started", flush=True)
while True:
    pass
"""
    result = run_python(program, Limits(timeout_s=1.0, processes=4096))
    assert result.status == TIMEOUT and "daemon started" in result.stdout
    assert none_left(mark), f"a setsid process outlived the timeout: {processes_with(mark)}"


def test_it_runs_unprivileged_and_cannot_raise_its_limits():
    program = """
import os, resource
print(os.getuid(), os.getgid())
try:
    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    print("RAISED")
except (ValueError, OSError) as err:
    print("kept", err)
"""
    result = run_python(program, FAST)
    assert result.stdout.startswith("65534 65534") and "RAISED" not in result.stdout, result.stdout


def test_without_namespaces_it_warns_once_and_still_kills_its_process_group(monkeypatch, capsys):
    monkeypatch.setenv("CRT_SANDBOX", "none")
    monkeypatch.setattr(sandbox, "_warned", set())
    sandbox.isolation.cache_clear()
    try:
        mark = f"{random.randrange(100, 999)}.{random.randrange(10**6, 10**7)}"
        program = f"import os\nif os.fork() == 0:\n    os.execv('/usr/bin/sleep', ['sleep', '{mark}'])\nprint('ok')\n"
        first, second = run_python(program, FORKING), run_python("print(1)\n", FAST)
        assert first.status == second.status == PASSED
        assert none_left(mark)
        err = capsys.readouterr().err
        assert err.count("warning: the sandbox runs programs without namespaces: CRT_SANDBOX=none is set") == 1
    finally:
        sandbox.isolation.cache_clear()


def test_a_failing_program_still_fails_and_passes_still_pass():
    assert run_python("from __future__ import annotations\nimport sys\nsys.exit(3)\n", FAST).status == FAILED
    ok = run_python("import json\nprint(json.dumps({'a': 1}))\n", FAST)
    assert ok.status == PASSED and json.loads(ok.stdout) == {"a": 1}
