"""The composition root: the only place that knows every concrete class.

`open_container(settings)` starts (or connects to) the database, applies migrations when
asked, and wires the services; closing it releases everything in reverse order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import anyio

from odk_mcp.events import AuditLog, Backoff, ConsumerRegistry, Deliveries, EventWorker
from odk_mcp.infra import migrations
from odk_mcp.infra.blobs import BlobStore, FileBlobStore
from odk_mcp.infra.embedded_postgres import EmbeddedPostgres
from odk_mcp.infra.sealing import Sealer, load_or_create_key
from odk_mcp.kernel.db import Database
from odk_mcp.services.aggregation import AggregationService, build_aggregation_service
from odk_mcp.services.aggregation.exports import ExportSettings, ExportsService, build_exports_service
from odk_mcp.services.analytics import AnalyticsService, JobSettings, build_analytics_service
from odk_mcp.services.entities import EntitiesService, build_entities_service
from odk_mcp.services.forms import FormCatalogue, FormLimits, FormLookup, FormsService, build_forms_service
from odk_mcp.services.submissions import (
    GroupWriter,
    SubmissionsService,
    build_submissions_service,
    current_attachments,
)
from odk_mcp.services.users import (
    AccessPolicy,
    ActorNames,
    UsersService,
    build_users_service,
    configure_password_hashing,
)
from odk_mcp.services.webhooks import SenderOptions, WebhooksService, build_webhooks_service
from odk_mcp.settings import Settings


@dataclass
class Container:
    settings: Settings
    db: Database
    blobs: BlobStore
    users: UsersService
    forms: FormsService
    submissions: SubmissionsService
    aggregation: AggregationService
    analytics: AnalyticsService
    entities: EntitiesService
    exports: ExportsService
    webhooks: WebhooksService
    audit_log: AuditLog
    consumers: ConsumerRegistry
    deliveries: Deliveries
    worker: EventWorker

    async def start(self) -> None:
        """Background duties of a serving process (resuming interrupted conversions, and the
        event worker unless it runs in separate `odk-mcp worker` processes)."""
        await anyio.to_thread.run_sync(self.blobs.check)
        await self.forms.start()
        if self.settings.worker_in_process:
            await self.aggregation.start()
            self.worker.start()
            self.webhooks.sender.start()
            self.entities.backlog.start()
        self.exports.start()
        self.analytics.start()

    async def close(self) -> None:
        await self.aggregation.stop()
        await self.exports.stop()
        await self.analytics.stop()
        await self.worker.stop()
        await self.webhooks.sender.stop()
        await self.entities.backlog.stop()
        await self.submissions.stop()
        await self.forms.stop()
        await self.db.dispose()


def secret_key(settings: Settings) -> bytes:
    """The configured sealing key, or the one kept in the data directory."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    return load_or_create_key(settings.data_dir / "secret.key")


def build_blob_store(settings: Settings) -> BlobStore:
    """Local files (default) or an S3-compatible bucket, per `ODK_MCP_BLOB_STORE`."""
    if settings.blob_store.startswith("s3://"):
        # Imported only when used: boto3 costs ~20 MB and 0.3 s at start.
        from odk_mcp.infra.s3_blobs import S3BlobStore, S3Location

        secret = settings.s3_secret_access_key
        return S3BlobStore(
            S3Location.parse(settings.blob_store),
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret is not None else None,
        )
    return FileBlobStore(settings.blobs)


def build_container(settings: Settings, database_url: str) -> Container:
    """Wire the services over a database URL (no I/O happens here)."""
    db = Database(database_url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow)
    configure_password_hashing(settings.password_hash_time_cost, settings.password_hash_memory_kib)
    policy = AccessPolicy()
    limits = FormLimits(
        max_form_bytes=settings.max_form_bytes,
        max_attachment_bytes=settings.max_attachment_bytes,
        conversion_workers=settings.conversion_workers,
        conversion_timeout_seconds=settings.conversion_timeout_seconds,
        conversion_memory_bytes=settings.conversion_memory_mb * 1024 * 1024,
        conversion_wait_seconds=settings.conversion_wait_seconds,
        max_unzipped_bytes=settings.max_unzipped_bytes,
    )
    blobs = build_blob_store(settings)
    sealer = Sealer(secret_key(settings))
    # Entities first: the forms service serves entity lists as attachments through them.
    entities = build_entities_service(
        db,
        policy,
        FormCatalogue(db),
        FormLookup(db),
        ActorNames(db),
        settings.public_url,
        backlog_wait=timedelta(hours=settings.entity_backlog_wait_hours),
        backlog_sweep_seconds=settings.entity_backlog_sweep_seconds,
    )
    forms = build_forms_service(
        db,
        policy,
        blobs,
        limits,
        settings.public_url,
        form_cache_seconds=settings.form_cache_seconds,
        datasets=entities.files,
    )
    writer = (
        GroupWriter(
            db,
            max_batch=settings.submission_batch_max,
            max_wait_seconds=settings.submission_batch_wait_ms / 1000,
            max_concurrent=settings.submission_batch_writers,
        )
        if settings.submission_group_commit
        else None
    )
    submissions = build_submissions_service(
        db,
        policy,
        forms.lookup,
        blobs,
        settings.max_submission_xml_bytes,
        settings.max_submission_bytes,
        writer,
    )
    users = build_users_service(
        db,
        policy,
        forms.catalogue,
        session_ttl=timedelta(hours=settings.session_ttl_hours),
        basic_cache_seconds=settings.basic_auth_cache_seconds,
        login_limit_per_account=settings.login_limit_per_account,
        login_limit_per_ip=settings.login_limit_per_ip,
        sealer=sealer,
        actor_cache_seconds=settings.auth_cache_seconds,
    )
    aggregation = build_aggregation_service(
        db, policy, forms.lookup, users.names, settings.public_url, columns_dir=settings.data_dir / "columns"
    )
    # Bulk imports and the group writer write the read model of new submissions in their own
    # transaction (docs/submissions.md).
    submissions.importer.add_projection(aggregation.import_projection)
    if writer is not None:
        writer.add_projection(aggregation.import_projection.write_new)
    exports = build_exports_service(
        db,
        aggregation.read_model,
        users.names,
        current_attachments,
        blobs,
        ExportSettings(
            data_dir=settings.data_dir,
            sav_max_rows=settings.export_sav_max_rows,
            batch_size=settings.export_batch_size,
            max_streams=settings.export_max_streams,
            job_ttl=timedelta(hours=settings.export_job_ttl_hours),
            job_stale_after=timedelta(seconds=settings.export_job_stale_seconds),
            job_max_attempts=settings.export_job_max_attempts,
            job_poll_seconds=settings.export_job_poll_seconds,
        ),
    )
    webhooks = build_webhooks_service(db, policy, forms.catalogue, sealer, webhook_options(settings))
    # Each service's event consumers join this registry as services grow them (docs/events.md).
    analytics = build_analytics_service(
        db,
        policy,
        aggregation,
        forms,
        analytics_job_settings(settings),
        settings.analytics_wait_seconds,
        settings.analytics_themes_max_answers,
    )
    consumers = ConsumerRegistry(
        [*aggregation.consumers(), *entities.consumers(), webhooks.consumer, *analytics.consumers()]
    )
    return Container(
        settings=settings,
        db=db,
        blobs=blobs,
        users=users,
        forms=forms,
        submissions=submissions,
        aggregation=aggregation,
        analytics=analytics,
        entities=entities,
        exports=exports,
        webhooks=webhooks,
        audit_log=AuditLog(db, users.policy),
        consumers=consumers,
        deliveries=Deliveries(db, users.policy),
        worker=build_event_worker(settings, db, consumers),
    )


def analytics_job_settings(settings: Settings) -> JobSettings:
    return JobSettings(
        ttl=timedelta(hours=settings.analytics_job_ttl_hours),
        stale_after=timedelta(seconds=settings.analytics_job_stale_seconds),
        max_attempts=settings.analytics_job_max_attempts,
        poll_seconds=settings.analytics_job_poll_seconds,
        concurrency=settings.analytics_job_concurrency,
    )


def webhook_options(settings: Settings) -> SenderOptions:
    return SenderOptions(
        allow_private=settings.webhook_allow_private,
        timeout_seconds=settings.webhook_timeout_seconds,
        max_attempts=settings.webhook_max_attempts,
        backoff=Backoff(base_seconds=settings.webhook_backoff_seconds),
        breaker_threshold=settings.webhook_breaker_threshold,
        breaker_cooldown_seconds=settings.webhook_breaker_cooldown_seconds,
        batch_size=settings.webhook_batch_size,
        poll_seconds=settings.webhook_poll_seconds,
    )


def build_event_worker(settings: Settings, db: Database, consumers: ConsumerRegistry) -> EventWorker:
    return EventWorker(
        db,
        consumers,
        batch_size=settings.worker_batch_size,
        lease_seconds=settings.worker_lease_seconds,
        max_attempts=settings.worker_max_attempts,
        backoff=Backoff(base_seconds=settings.worker_backoff_seconds),
        poll_seconds=settings.worker_poll_seconds,
        coalesce_seconds=settings.worker_coalesce_seconds,
    )


@asynccontextmanager
async def database_url(settings: Settings) -> AsyncIterator[str]:
    """The configured external database, or the embedded one started for the block's duration."""
    if settings.database_url is not None:
        yield settings.database_url.get_secret_value()
        return
    embedded = EmbeddedPostgres(settings.pgdata)
    url = await anyio.to_thread.run_sync(embedded.start)
    try:
        yield url
    finally:
        await anyio.to_thread.run_sync(embedded.stop)


@asynccontextmanager
async def open_container(settings: Settings, migrate: bool | None = None) -> AsyncIterator[Container]:
    async with database_url(settings) as url:
        if settings.run_migrations_on_start if migrate is None else migrate:
            await anyio.to_thread.run_sync(migrations.upgrade, url)
        container = build_container(settings, url)
        try:
            # Before anything can emit: events are delivered to consumers subscribed at the time.
            await container.consumers.sync(container.db)
            yield container
        finally:
            await container.close()
