"""A throwaway PostgreSQL cluster for tests: initdb + pg_ctl under a temp dir, on 127.0.0.1.

PostgreSQL refuses to run as root, so under root (CI) the cluster runs as the ``postgres`` system
user the Debian package creates (or ``nobody``). :func:`start_cluster` returns None with the reason
when no server can be started here (no binaries, no unprivileged user), for the fixture to skip.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from serving.launch import free_port


@dataclass
class Cluster:
    url: str
    data: Path
    pg_ctl: str
    run_as: list[str]

    def stop(self) -> None:
        subprocess.run([*self.run_as, self.pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(self.data.parent, ignore_errors=True)


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def start_cluster() -> Cluster | str:
    """A running cluster, or the reason why none could be started."""
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not initdb or not pg_ctl:
        return "PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql"
    run_as: list[str] = []
    root = tempfile.mkdtemp(prefix="bump-pg-")
    os.chmod(root, 0o755)
    if os.geteuid() == 0:
        for user in ("postgres", "nobody"):
            try:
                entry = pwd.getpwnam(user)
            except KeyError:
                continue
            runuser = shutil.which("runuser") or shutil.which("su")
            if runuser and runuser.endswith("runuser"):
                run_as = [runuser, "-u", user, "--"]
                os.chown(root, entry.pw_uid, entry.pw_gid)
                break
        if not run_as:
            shutil.rmtree(root, ignore_errors=True)
            return "running as root with no unprivileged user (postgres/nobody) and runuser to start PostgreSQL"
    data = Path(root) / "data"
    port = free_port()
    steps = [
        [*run_as, initdb, "-D", str(data), "-U", "bump", "--auth=trust", "-E", "UTF8", "--no-sync"],
        [*run_as, pg_ctl, "-D", str(data), "-w", "-t", "60", "-l", str(Path(root) / "log"),
         "-o", f"-h 127.0.0.1 -p {port} -k {root} -F", "start"],
    ]
    for cmd in steps:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = Path(root) / "log"
            detail = (result.stderr or result.stdout).strip()[-500:] + (log.read_text()[-500:] if log.exists() else "")
            shutil.rmtree(root, ignore_errors=True)
            return f"could not start PostgreSQL ({Path(cmd[len(run_as)]).name} failed): {detail}"
    return Cluster(f"postgresql://bump@127.0.0.1:{port}/postgres", data, pg_ctl, run_as)


def create_database(cluster: Cluster, name: str) -> str:
    """A fresh empty database in the cluster; its URL."""
    import psycopg

    with psycopg.connect(cluster.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return cluster.url.rsplit("/", 1)[0] + f"/{name}"
