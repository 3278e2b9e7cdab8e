"""Provides the OpenStack venv: where it lives, and building or completing it with pip (one builder at a time)."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..procs import LabError
from .settings import REQUIREMENTS, VENV_SCRIPTS


def venv_dir() -> Path:
    if os.environ.get("SOVTUI_OPENSTACK_VENV"):
        return Path(os.environ["SOVTUI_OPENSTACK_VENV"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "sovtui-lab" / "openstack-venv"
    return Path("/var/tmp/sovtui-openstack-venv")


def ensure_venv(log_dir: Path) -> Path:
    """The OpenStack venv, built with pip when missing or incomplete (serialised by a file lock).

    A venv whose python runs is completed in place (pip installs what the requirements add), so a
    lab that still runs from it is not pulled from under its feet; a broken one is built anew.
    """
    venv = venv_dir()
    stamp = venv / ".sovtui-lab-requirements"
    want = "\n".join(REQUIREMENTS)
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        complete = all((venv / "bin" / script).exists() for script in VENV_SCRIPTS)
        if stamp.is_file() and stamp.read_text() == want and complete:
            return venv
        log_dir.mkdir(parents=True, exist_ok=True)
        log = log_dir / "pip.log"
        python = venv / "bin" / "python"
        reuse = (
            python.exists()
            and subprocess.run([str(python), "-c", "import pip"], capture_output=True, timeout=60).returncode == 0
        )
        with open(log, "wb") as out:
            steps = [[str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", *REQUIREMENTS]]
            if not reuse:
                shutil.rmtree(venv, ignore_errors=True)
                steps.insert(0, [getattr(sys, "_base_executable", None) or sys.executable, "-m", "venv", str(venv)])
            for argv in steps:
                rc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=900).returncode
                if rc != 0:
                    tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
                    raise LabError(f"building the OpenStack venv failed: {' '.join(argv[:3])} exited {rc}\n{tail}")
        stamp.write_text(want)
        return venv
