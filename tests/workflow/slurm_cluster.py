"""A throw-away single-node SLURM cluster (munge, slurmctld, slurmd) for the SLURM profile test.

Everything lives in one directory: a fresh munge key and socket, a ``slurm.conf`` generated
from this machine (its hostname, CPUs and memory), free TCP ports, state, spool and logs; no
system daemon is reused. One system file is needed: ``/etc/slurm/slurm.conf``, a link to the
generated file while the cluster runs, because the SLURM plugin's job step drops
``SLURM_CONF`` before calling ``srun`` inside the job, so srun reads the default path as on a
real cluster. The cluster refuses to start where that file already exists (a configured
machine), and removes the link when it stops. Accounting is off (no slurmdbd), as on many small clusters: finished jobs are
recorded by ``JobCompType=jobcomp/filetxt`` in ``jobcomp.txt``, which the test reads as the
history of what ran under SLURM. Client commands (sbatch, squeue, scancel) find the cluster
through the ``SLURM_CONF`` variable of :attr:`SlurmCluster.env`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo")
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
PARTITION = "nam"


def missing_programs() -> list[str]:
    """The programs of slurm-wlm and munge that are not installed."""
    return [name for name in DAEMONS if shutil.which(name) is None]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _machine() -> tuple[int, int]:
    """CPUs and memory (MB) to declare for the node: what slurmd itself would report."""
    cpus = os.cpu_count() or 1
    mem_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return cpus, int(mem_mb * 0.9)  # slurmd drains a node that declares more than it has


def slurm_conf(root: Path, host: str, cpus: int, mem_mb: int) -> str:
    """A single-node slurm.conf without accounting; every path under ``root``."""
    return "\n".join(
        [
            "ClusterName=namtest",
            f"SlurmctldHost={host}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={root / 'munge.socket'}",
            f"StateSaveLocation={root / 'state'}",
            f"SlurmdSpoolDir={root / 'spool'}",
            f"SlurmctldPidFile={root / 'slurmctld.pid'}",
            f"SlurmdPidFile={root / 'slurmd.pid'}",
            f"SlurmctldLogFile={root / 'slurmctld.log'}",
            f"SlurmdLogFile={root / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/filetxt",
            f"JobCompLoc={root / 'jobcomp.txt'}",
            "MpiDefault=none",
            "SwitchType=switch/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "ReturnToService=2",
            "SchedulerType=sched/backfill",
            "MinJobAge=600",
            f"NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


class SlurmCluster:
    """Start munged, slurmctld and slurmd under ``root``; :meth:`stop` ends exactly those.

    Parameters
    ----------
    root : Path
        An empty directory for the key, configuration, state and logs.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self.host = socket.gethostname().split(".")[0]
        self.cpus, self.mem_mb = _machine()
        self.conf = self.root / "slurm.conf"
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        self._pidfiles: list[Path] = []
        self._linked = False

    def start(self, timeout: float = 60) -> SlurmCluster:
        """Write the key and slurm.conf, start the three daemons, wait for an idle node."""
        self.root.chmod(0o700)  # munged refuses a key or socket in a group-writable directory
        for sub in ("state", "spool"):
            (self.root / sub).mkdir()
        key = self.root / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self.conf.write_text(slurm_conf(self.root, self.host, self.cpus, self.mem_mb))
        if SYSTEM_CONF.exists() or SYSTEM_CONF.is_symlink():
            raise RuntimeError(f"{SYSTEM_CONF} exists: this machine has a SLURM configuration "
                               "of its own, which the test does not touch")
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SYSTEM_CONF.symlink_to(self.conf)
        self._linked = True
        self._daemon(
            ["munged", "--force", f"--socket={self.root / 'munge.socket'}",
             f"--key-file={key}", f"--pid-file={self.root / 'munged.pid'}",
             f"--log-file={self.root / 'munged.log'}", f"--seed-file={self.root / 'munged.seed'}"],
            self.root / "munged.pid",
        )
        self._daemon(["slurmctld", "-f", str(self.conf)], self.root / "slurmctld.pid")
        self._daemon(["slurmd", "-f", str(self.conf), "-N", self.host], self.root / "slurmd.pid")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.run("sinfo", "-h", "-N", "-o", "%t", check=False).stdout.strip()
            if state in ("idle", "mix", "alloc"):
                return self
            time.sleep(1)
        raise RuntimeError(f"the SLURM node did not come up (state {state!r}):\n{self.logs()}")

    def _daemon(self, cmd: list[str], pidfile: Path) -> None:
        proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, check=False)
        self._pidfiles.append(pidfile)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stdout}{proc.stderr}{self.logs()}")
        for _ in range(50):
            if pidfile.is_file() and pidfile.read_text().strip():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{cmd[0]} wrote no pid file {pidfile}:\n{self.logs()}")

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        """A SLURM client command against this cluster."""
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, check=check,
                              timeout=60)

    def finished_jobs(self) -> list[dict[str, str]]:
        """Records of ``jobcomp.txt``: one dict per finished job (JobId, JobName, JobState...)."""
        path = self.root / "jobcomp.txt"
        if not path.is_file():
            return []
        records = []
        for line in path.read_text().splitlines():
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            if fields:
                records.append(fields)
        return records

    def logs(self) -> str:
        """The tails of the daemons' logs, for failure messages."""
        parts = []
        for name in ("munged.log", "slurmctld.log", "slurmd.log"):
            path = self.root / name
            if path.is_file():
                parts.append(f"--- {name}\n" + "\n".join(path.read_text().splitlines()[-20:]))
        return "\n".join(parts)

    def stop(self) -> None:
        """Cancel what is left of our jobs, then end the daemons started here, newest first."""
        with contextlib.suppress(Exception):
            self.run("scancel", "--partition", PARTITION, check=False)
        for pidfile in reversed(self._pidfiles):
            with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
                pid = int(pidfile.read_text().split()[0])
                os.kill(pid, signal.SIGTERM)
                for _ in range(50):
                    os.kill(pid, 0)  # raises ProcessLookupError once it is gone
                    time.sleep(0.1)
                os.kill(pid, signal.SIGKILL)
        if self._linked and SYSTEM_CONF.is_symlink():
            SYSTEM_CONF.unlink()


@contextlib.contextmanager
def slurm_cluster(root: Path):
    """A running :class:`SlurmCluster`, stopped on exit (also when the body or start fails)."""
    cluster = SlurmCluster(root)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
