"""The `odk-mcp` command: serve, worker, migrate, export, users, event deliveries, reports, version."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import anyio
import typer

from odk_mcp import __version__
from odk_mcp.settings import Settings

if TYPE_CHECKING:
    from odk_mcp.kernel.problems import Problem

app = typer.Typer(help="odk-mcp: a field data-collection server for the ODK ecosystem.", no_args_is_help=True)
user_app = typer.Typer(help="Manage web users from the server machine.", no_args_is_help=True)
app.add_typer(user_app, name="user")
events_app = typer.Typer(help="Event deliveries to consumers (see docs/events.md).", no_args_is_help=True)
app.add_typer(events_app, name="events")
entities_app = typer.Typer(help="Entity lists (see docs/entities.md).", no_args_is_help=True)
app.add_typer(entities_app, name="entities")

T = TypeVar("T")

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (default: ODK_MCP_DATA_DIR or ./odk-mcp-data)."),
]


def _settings(data_dir: Path | None = None, **overrides: object) -> Settings:
    values: dict[str, object] = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    return Settings(**values)  # type: ignore[arg-type]


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _read_password(password_env: str) -> str:
    """The password from an environment variable, piped stdin, or an interactive prompt."""
    if password_env in os.environ:
        return os.environ[password_env]
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


def _run(settings: Settings, work: Callable[..., Awaitable[T]]) -> T:
    """Open the container (starting the embedded database if needed), run `work`, close."""
    from odk_mcp.bootstrap import open_container
    from odk_mcp.gateway.logs import configure_logging
    from odk_mcp.kernel.problems import Problem

    configure_logging(settings.log_level, settings.log_json)

    async def main() -> T:
        async with open_container(settings) as container:
            return await work(container)

    try:
        return anyio.run(main)
    except Problem as problem:
        _fail(_describe(problem))
        raise  # unreachable: _fail exits


def _describe(problem: Problem) -> str:
    """A problem as one line for a terminal: message, the reasons when it has some, code."""
    message = problem.message
    reasons = problem.details.get("reasons")
    if isinstance(reasons, list) and reasons:
        message = f"{message.rstrip('.')}: {'; '.join(str(r) for r in reasons)}."
    return f"{message} ({problem.code})"


def _exit_quietly_after_shutdown() -> None:
    """Make SIGTERM/SIGINT end `serve` with status 0 once uvicorn has shut down cleanly.

    uvicorn handles both signals itself (graceful shutdown, lifespan shutdown, which stops
    the embedded PostgreSQL), then restores the previous handlers and raises the signal
    again. With the default handlers that re-raise kills the process (status -15, or a
    KeyboardInterrupt traceback): these handlers ignore it, so `serve` returns normally.
    """

    def noted(signum: int, frame: object) -> None:
        return None

    signal.signal(signal.SIGTERM, noted)
    signal.signal(signal.SIGINT, noted)


@app.command()
def serve(
    data_dir: DataDir = None,
    host: Annotated[str | None, typer.Option(help="Listen address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default 8383).")] = None,
) -> None:
    """Run the server (REST, OpenRosa) on the embedded PostgreSQL unless DATABASE_URL is set."""
    import uvicorn

    from odk_mcp.gateway import create_app
    from odk_mcp.gateway.logs import configure_logging

    settings = _settings(data_dir, host=host, port=port)
    configure_logging(settings.log_level, settings.log_json)
    _exit_quietly_after_shutdown()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        # One Date header on every response, added by the gateway (ObservabilityMiddleware) so
        # that ASGI tests see the same headers as the served app.
        date_header=False,
    )


@app.command()
def mcp(
    data_dir: DataDir = None,
    stdio: Annotated[bool, typer.Option("--stdio", help="Serve MCP over stdin/stdout.")] = False,
) -> None:
    """Serve the MCP server over stdio (credentials: ODK_MCP_MCP_TOKEN). Over HTTP, `serve`
    already answers at /mcp."""
    if not stdio:
        _fail("choose a transport: --stdio (HTTP clients use /mcp of `odk-mcp serve`)", code=2)
    from odk_mcp.mcp.stdio import run_stdio

    _run(_settings(data_dir), run_stdio)


@app.command()
def worker(data_dir: DataDir = None) -> None:
    """Run only the event worker and the webhook sender, until SIGTERM/SIGINT (scaled
    deployments; see docs/events.md and docs/webhooks.md)."""
    from odk_mcp.bootstrap import Container

    async def work(container: Container) -> None:
        async def stop_on_signal() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    await container.worker.stop()
                    await container.webhooks.sender.stop()
                    return

        container.webhooks.sender.start()
        container.entities.backlog.start()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(stop_on_signal)
            await container.worker.run_forever()
            tasks.cancel_scope.cancel()
        await container.webhooks.sender.stop()
        await container.entities.backlog.stop()

    _run(_settings(data_dir), work)


@events_app.command("redrive")
def events_redrive(
    consumer: Annotated[str | None, typer.Option(help="Only this consumer's deliveries.")] = None,
    dead_only: Annotated[
        bool, typer.Option("--dead-only", help="Leave retries that wait out their backoff alone.")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Retry dead deliveries from scratch (and, unless --dead-only, waiting retries now)."""
    from odk_mcp.bootstrap import Container
    from odk_mcp.kernel.actor import SYSTEM

    async def work(container: Container) -> int:
        return await container.deliveries.redrive(SYSTEM, consumer=consumer, dead_only=dead_only)

    moved = _run(_settings(data_dir), work)
    typer.echo(f"{moved} deliveries back to pending")


@entities_app.command("process-backlog")
def entities_process_backlog(
    force: Annotated[
        bool, typer.Option("--force", help="Every held update now, not only those past the wait.")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Apply held offline entity updates that waited past ODK_MCP_ENTITY_BACKLOG_WAIT_HOURS."""
    from odk_mcp.bootstrap import Container

    async def work(container: Container) -> int:
        return await container.entities.backlog.process(force_all=force)

    taken = _run(_settings(data_dir), work)
    typer.echo(f"{taken} held entity updates applied")


@app.command()
def rebuild(
    form: Annotated[
        list[str] | None,
        typer.Option(
            "--form", help="Only this form, as PROJECT_ID/XML_FORM_ID (repeatable; default: every form)."
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Rebuild the aggregation read model from the stored submissions (safe while serving)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from odk_mcp.bootstrap import Container
    from odk_mcp.services.aggregation import RebuildProgress

    targets: list[tuple[int, str]] = []
    for spec in form or []:
        project, _, xml_form_id = spec.partition("/")
        if not project.isdigit() or not xml_form_id:
            _fail(f"--form takes PROJECT_ID/XML_FORM_ID, not {spec!r}")
        targets.append((int(project), xml_form_id))

    async def work(container: Container) -> int:
        projector = container.aggregation.projector
        form_ids = await projector.form_ids(targets) if targets else None
        columns = (TextColumn("rebuilding"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, transient=False) as bar:
            task = bar.add_task("rebuild", total=None)

            def advance(step: RebuildProgress) -> None:
                bar.update(task, completed=step.done, total=step.total)

            return await projector.rebuild(form_ids, progress=advance)

    done = _run(_settings(data_dir), work)
    typer.echo(f"rebuilt the read model of {done} submissions")


@app.command("import")
def import_command(
    project: Annotated[int, typer.Option("--project", help="Project id.")],
    form: Annotated[str, typer.Option("--form", help="The form's xmlFormId.")],
    paths: Annotated[
        list[Path], typer.Argument(help="Submission XML files, folders (every *.xml below) or .zip archives.")
    ],
    batch_size: Annotated[int, typer.Option("--batch-size", help="Submissions per transaction.")] = 1000,
    workers: Annotated[
        int, typer.Option("--workers", help="Processes reading the XML (0: a thread of this one).")
    ] = 1,
    data_dir: DataDir = None,
) -> None:
    """Import submission XML documents of one form in bulk (docs/submissions.md, "Bulk import")."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from odk_mcp.bootstrap import Container
    from odk_mcp.kernel.actor import SYSTEM
    from odk_mcp.services.submissions import ImportResult
    from odk_mcp.services.submissions.bulk_files import count_documents, read_documents

    for path in paths:
        if not path.exists():
            _fail(f"{path} does not exist")
    total = count_documents(paths)

    async def work(container: Container) -> ImportResult:
        columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, transient=False) as bar:
            task = bar.add_task("import", total=total)

            def advance(done: ImportResult) -> None:
                bar.update(task, completed=done.imported + done.skipped + len(done.conflicts))

            return await container.submissions.importer.import_many(
                SYSTEM,
                project,
                form,
                read_documents(paths, container.submissions.max_xml_bytes),
                batch_size,
                workers,
                advance,
            )

    result = _run(_settings(data_dir), work)
    typer.echo(
        f"imported {result.imported} submissions, skipped {result.skipped} already stored,"
        f" {len(result.conflicts)} conflicts"
    )
    for instance_id in result.conflicts[:20]:
        typer.echo(f"conflict (stored with other content, not imported): {instance_id}")


@app.command()
def report(
    project: Annotated[int, typer.Option("--project", help="Project id.")],
    form: Annotated[str, typer.Option("--form", help="The form's xmlFormId.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the report: a .html or .pdf file.")],
    data_dir: DataDir = None,
) -> None:
    """Write a form's insight report (charts, quality flags, recommendations) as HTML or PDF."""
    from odk_mcp.bootstrap import Container
    from odk_mcp.kernel.actor import SYSTEM

    kind = out.suffix.lower().lstrip(".")
    if kind not in ("html", "pdf"):
        _fail(f"--out must end in .html or .pdf, not {out.name!r}")

    async def work(container: Container) -> bytes:
        return await container.analytics.reports.render(
            SYSTEM, project, form, "pdf" if kind == "pdf" else "html"
        )

    out.write_bytes(_run(_settings(data_dir), work))
    typer.echo(f"wrote {out}")


@app.command()
def migrate(data_dir: DataDir = None) -> None:
    """Apply database migrations (the server also does this when it starts)."""

    async def work(container: object) -> None:
        return None

    _run(_settings(data_dir, run_migrations_on_start=True), work)
    typer.echo("database is up to date")


@app.command("export")
def export_command(
    project: Annotated[int, typer.Option("--project", help="Project id.")],
    form: Annotated[str, typer.Option("--form", help="The form's xmlFormId.")],
    out: Annotated[Path, typer.Option("--out", help="File to write (replaced when complete).")],
    export_format: Annotated[
        str, typer.Option("--format", help="csv.zip, csv, xlsx, geojson, sav or parquet.")
    ] = "csv.zip",
    draft: Annotated[bool, typer.Option("--draft", help="Export the draft's test submissions.")] = False,
    odata_filter: Annotated[str | None, typer.Option("--filter", help="An OData $filter.")] = None,
    option: Annotated[
        list[str] | None,
        typer.Option("--option", help="An export option as name=value (e.g. groupPaths=false), repeatable."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Export a form's submissions to a file with a progress bar (the API's exports, as the server)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from odk_mcp.bootstrap import Container
    from odk_mcp.kernel.actor import SYSTEM
    from odk_mcp.services.aggregation.exports import ExportFormat, parse_options

    raw: dict[str, object] = {}
    for item in option or []:
        name, sep, value = item.partition("=")
        if not sep:
            _fail(f"--option takes name=value, not {item!r}")
        raw[name.strip()] = value
    if odata_filter is not None:
        raw["$filter"] = odata_filter

    async def work(container: Container) -> int:
        fmt = ExportFormat.parse(export_format)
        options = parse_options(raw, strict=True)
        exports = container.exports.exports
        prepared = await exports.prepare(SYSTEM, project, form, draft, fmt, options)
        total = await exports.count(prepared)
        part = out.with_name(out.name + ".part")
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, transient=False) as bar:
            task = bar.add_task(f"{form} → {out.name}", total=total)

            async def progress(rows: int) -> None:
                bar.advance(task, rows)

            try:
                await exports.write(prepared, part, progress)
            except BaseException:
                part.unlink(missing_ok=True)
                raise
        part.replace(out)
        return total

    count = _run(_settings(data_dir), work)
    typer.echo(f"{count} submissions exported to {out}")


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="Email address the user logs in with.")],
    admin: Annotated[bool, typer.Option("--admin", help="Make the user a sitewide administrator.")] = False,
    password_env: Annotated[
        str, typer.Option(help="Environment variable holding the password (else stdin or a prompt).")
    ] = "ODK_MCP_PASSWORD",  # noqa: S107 - a variable name, not a password
    data_dir: DataDir = None,
) -> None:
    """Create a web user (the first administrator, typically)."""
    from odk_mcp.bootstrap import Container
    from odk_mcp.kernel.actor import SYSTEM

    password = _read_password(password_env)

    async def work(container: Container) -> int:
        view = await container.users.accounts.create_user(SYSTEM, email, password, None)
        if admin:
            await container.users.accounts.promote(SYSTEM, email)
        return view.id

    user_id = _run(_settings(data_dir), work)
    typer.echo(f"created user {user_id} <{email}>{' as administrator' if admin else ''}")


@user_app.command("promote")
def user_promote(
    email: Annotated[str, typer.Option(help="Email of an existing user.")], data_dir: DataDir = None
) -> None:
    """Make an existing user a sitewide administrator."""
    from odk_mcp.bootstrap import Container
    from odk_mcp.kernel.actor import SYSTEM

    async def work(container: Container) -> None:
        await container.users.accounts.promote(SYSTEM, email)

    _run(_settings(data_dir), work)
    typer.echo(f"{email} is now an administrator")


@user_app.command("set-password")
def user_set_password(
    email: Annotated[str, typer.Option(help="Email of an existing user.")],
    password_env: Annotated[
        str, typer.Option(help="Environment variable holding the password (else stdin or a prompt).")
    ] = "ODK_MCP_PASSWORD",  # noqa: S107 - a variable name, not a password
    data_dir: DataDir = None,
) -> None:
    """Set a user's password (their sessions end)."""
    from odk_mcp.bootstrap import Container
    from odk_mcp.kernel.actor import SYSTEM

    password = _read_password(password_env)

    async def work(container: Container) -> None:
        await container.users.accounts.set_password(SYSTEM, email, password)

    _run(_settings(data_dir), work)
    typer.echo(f"password set for {email}")


def main() -> None:
    app()
