"""A job process ends, leaving no partial output, when the process that started it is killed."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

# A job as the scripts run it: logged(), then a long atomic write under way.
JOB = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {root!r})
    sys.path.insert(0, {scripts!r})
    from _common import logged
    from nam_core.io import atomic_path
    with logged({log!r}):
        with atomic_path({out!r}) as tmp:
            tmp.write_text("partial")
            open({ready!r}, "w").close()
            time.sleep(120)
            tmp.write_text("complete")
    """
)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start_job_under_parent(tmp_path: Path, parent_name: str) -> tuple[subprocess.Popen, int]:
    """A parent Python process, its file named ``parent_name``, that runs the job through a
    shell and waits for it, as Snakemake runs a script job; (parent, job PID)."""
    job = tmp_path / "job.py"
    job.write_text(JOB.format(root=str(ROOT), scripts=str(ROOT / "scripts"),
                              log=str(tmp_path / "job.log"), out=str(tmp_path / "out.txt"),
                              ready=str(tmp_path / "ready")))
    pid_file = tmp_path / "job.pid"
    shell = f"{sys.executable} {job} & echo $! > {pid_file}; wait"
    launcher = tmp_path / "bin" / parent_name
    launcher.parent.mkdir()
    if parent_name == "snakemake":  # Snakemake -> shell -> job
        launcher.write_text(f"import subprocess\nsubprocess.run(['bash', '-c', {shell!r}])\n")
    else:  # the launcher becomes the shell: shell -> job
        launcher.write_text(f"import os\nos.execvp('bash', ['bash', '-c', {shell!r}])\n")
    parent = subprocess.Popen([sys.executable, str(launcher)], start_new_session=True)
    for _ in range(300):
        if (tmp_path / "ready").exists() and pid_file.exists():
            break
        time.sleep(0.1)
    else:
        parent.kill()
        pytest.fail("the job did not start: " + (tmp_path / "job.log").read_text())
    return parent, int(pid_file.read_text())


def _wait_gone(pid: int, timeout_s: float) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if not _alive(pid):
            return time.monotonic() - start
        time.sleep(0.1)
    return None


@pytest.mark.parametrize("parent_name", ["snakemake", "launcher"])
def test_job_exits_within_seconds_when_its_parent_is_killed(tmp_path, parent_name):
    """Killing a parent named snakemake leaves the shell between it and the job alive: the job
    must watch Snakemake itself. Any other parent is the shell, watched as the direct parent."""
    parent, job = _start_job_under_parent(tmp_path, parent_name)
    assert list(tmp_path.glob(".out.txt.*")), "the write under way has a temporary file"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    took = _wait_gone(job, 6.0)
    if took is None:
        os.kill(job, signal.SIGKILL)
    assert took is not None, "the job outlived its parent by more than 6 s"
    assert not (tmp_path / "out.txt").exists(), "no output under its final name"
    assert not list(tmp_path.glob(".out.txt.*")), "the temporary file is removed"
    assert "is gone" in (tmp_path / "job.log").read_text()


def test_snakemake_ancestor_is_found_through_a_shell(tmp_path):
    """The nearest ancestor whose command line names snakemake, through the shell between."""
    launcher = tmp_path / "snakemake"
    probe = "from nam_core.parent_watch import find_snakemake_ancestor as f; print(f())"
    launcher.write_text(
        "import os, subprocess, sys\n"
        f"out = subprocess.run(['bash', '-c', {sys.executable!r} + ' -c \"{probe}\"'],"
        " capture_output=True, text=True).stdout\n"
        "print(os.getpid(), out.strip())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    own, found = subprocess.run([sys.executable, str(launcher)], capture_output=True, text=True,
                                check=True, env=env).stdout.split()
    assert found == own
