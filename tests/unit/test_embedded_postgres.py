"""The embedded database's handle list survives processes killed with SIGKILL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from odk_mcp.infra.embedded_postgres import HANDLES_FILE, forget_dead_handles


def test_handles_of_dead_processes_are_forgotten(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    (tmp_path / HANDLES_FILE).write_text(json.dumps([os.getpid(), dead_pid]))
    assert forget_dead_handles(tmp_path) == [dead_pid]
    assert json.loads((tmp_path / HANDLES_FILE).read_text()) == [os.getpid()]


def test_a_missing_or_broken_handle_list_is_left_alone(tmp_path: Path) -> None:
    assert forget_dead_handles(tmp_path) == []
    (tmp_path / HANDLES_FILE).write_text("not json")
    assert forget_dead_handles(tmp_path) == []
    assert (tmp_path / HANDLES_FILE).read_text() == "not json"
