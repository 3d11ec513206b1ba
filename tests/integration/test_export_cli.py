"""`odk-mcp export` as an operator runs it: a real process on the test database writes the same
zip as the API, with a progress bar, and fails cleanly on a bad request."""

from __future__ import annotations

import io
import os
import sys
import zipfile
from pathlib import Path

import anyio
import httpx
from tests.api.test_exports import ROOT_HEADER, setup_form
from tests.conftest import Person

from odk_mcp.bootstrap import Container
from odk_mcp.settings import Settings


async def _cli(settings: Settings, *args: str) -> tuple[int, str]:
    env = {
        **os.environ,
        "ODK_MCP_DATABASE_URL": settings.database_url.get_secret_value() if settings.database_url else "",
        "ODK_MCP_DATA_DIR": str(settings.data_dir),
        "ODK_MCP_LOG_LEVEL": "ERROR",
    }
    done = await anyio.run_process([sys.executable, "-m", "odk_mcp", "export", *args], env=env, check=False)
    return done.returncode, (done.stdout + done.stderr).decode()


async def test_export_command_writes_the_zip(
    client: httpx.AsyncClient, container: Container, admin: Person, settings: Settings, tmp_path: Path
) -> None:
    pid = await setup_form(client, container, admin)
    out = tmp_path / "household.zip"
    code, output = await _cli(
        settings,
        "--project",
        str(pid),
        "--form",
        "household_survey",
        "--out",
        str(out),
        "--option",
        "attachments=false",
    )
    assert code == 0, output
    assert "2 submissions exported" in output
    archive = zipfile.ZipFile(io.BytesIO(out.read_bytes()))
    assert archive.namelist() == [
        "household_survey.csv",
        "household_survey-member.csv",
        "household_survey-pets.csv",
    ]
    assert archive.read("household_survey.csv").decode().splitlines()[0] == ROOT_HEADER
    assert not (tmp_path / "household.zip.part").exists()

    parquet = tmp_path / "h.parquet"
    form = ("--project", str(pid), "--form", "household_survey")
    code, output = await _cli(
        settings, *form, "--format", "parquet", "--out", str(parquet), "--filter", "age gt 35"
    )
    assert code == 0, output
    import pyarrow.parquet as pq

    assert pq.read_table(parquet).column("name").to_pylist() == ["Bo"]


async def test_export_command_fails_cleanly(
    client: httpx.AsyncClient, container: Container, admin: Person, settings: Settings, tmp_path: Path
) -> None:
    pid = await setup_form(client, container, admin)
    out = tmp_path / "x.zip"
    code, output = await _cli(settings, "--project", str(pid), "--form", "nosuch", "--out", str(out))
    assert code == 1 and "error:" in output and not out.exists()
    code, output = await _cli(
        settings, "--project", str(pid), "--form", "household_survey", "--out", str(out), "--format", "exe"
    )
    assert code == 1 and "format must be one of" in output
    code, output = await _cli(
        settings, "--project", str(pid), "--form", "household_survey", "--out", str(out), "--option", "bogus"
    )
    assert code == 1 and "name=value" in output
