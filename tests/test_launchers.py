"""The three programs start from the repository root the way their first users wrote them:
``python ocpp_gw.py --config config.cfg``, ``python csms_server.py``, ``python charge_station.py``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAUNCHERS = {"ocpp_gw.py": "ocpp-gw", "csms_server.py": "csms-server", "charge_station.py": "charge-station"}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("launcher", "program"), LAUNCHERS.items())
def test_a_launcher_runs_its_package_and_prints_its_usage(launcher: str, program: str) -> None:
    done = run(launcher, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {program} [-h] [--config CONFIG]"), done.stdout


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_a_launcher_passes_the_exit_status_on(launcher: str, tmp_path: Path) -> None:
    done = run(launcher, "--config", str(tmp_path / "missing.cfg"))
    assert done.returncode == 2 and "config error" in done.stderr, done.stderr


def test_the_launchers_type_check_on_their_own(tmp_path: Path) -> None:
    """The project's mypy run cannot hold them: each has the name of the package beside it."""
    done = run("-m", "mypy", "--strict", "--cache-dir", str(tmp_path), *LAUNCHERS)
    assert done.returncode == 0, done.stdout + done.stderr
