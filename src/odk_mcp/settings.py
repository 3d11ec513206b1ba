"""All configuration, read once at start from the environment (prefix `ODK_MCP_`).

Nothing reads the environment at import time: `Settings()` is built by the CLI or by
tests and handed to the composition root. Every setting is documented in
docs/configuration.md, and a test keeps the two in step.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ODK_MCP_", extra="ignore")

    data_dir: Path = Field(
        default=Path("./odk-mcp-data"), description="Where the embedded database and files live."
    )
    database_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ODK_MCP_DATABASE_URL", "DATABASE_URL"),
        description="An external PostgreSQL URL; unset means the embedded PostgreSQL in data_dir.",
    )
    host: str = Field(default="127.0.0.1", description="Address the HTTP server listens on.")
    port: int = Field(default=8383, ge=1, le=65535, description="Port the HTTP server listens on.")
    public_url: str = Field(
        default="http://127.0.0.1:8383", description="Base URL clients reach the server at (absolute links)."
    )
    db_pool_size: int = Field(default=10, ge=1, le=200, description="Database connections kept open.")
    db_max_overflow: int = Field(
        default=10, ge=0, le=200, description="Extra connections allowed under load."
    )
    password_hash_time_cost: int = Field(
        default=3, ge=1, le=50, description="argon2 iterations for new password hashes."
    )
    password_hash_memory_kib: int = Field(
        default=65536, ge=64, le=4_194_304, description="argon2 memory (KiB) for new password hashes."
    )
    session_ttl_hours: float = Field(default=24.0, gt=0, description="Lifetime of a login session.")
    basic_auth_cache_seconds: float = Field(
        default=60.0, ge=0, description="How long a verified HTTP Basic credential is remembered (0 = never)."
    )
    auth_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long the actor behind a session, app-user key or Basic credential is remembered "
        "(0 = never). Revocations in this process apply at once; other processes see them within this time.",
    )
    form_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long the form definition a submission targets is remembered (0 = never). Form "
        "changes in this process apply at once; other processes see them within this time.",
    )
    trust_forwarded_proto: bool = Field(
        default=True,
        description="Honour X-Forwarded-Proto/X-Forwarded-For from the proxies in forwarded_allow_ips.",
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1,::1",
        description="Comma-separated addresses (or '*') of the reverse proxies whose forwarded headers"
        " are trusted.",
    )
    login_limit_per_account: str = Field(
        default="5/5 minutes", description="Failed logins allowed per account before 429 (limits syntax)."
    )
    login_limit_per_ip: str = Field(
        default="30/5 minutes", description="Failed logins allowed per client address before 429."
    )
    rate_limit: str = Field(
        default="", description="General API rate limit per client, e.g. '1200/minute'; empty turns it off."
    )
    max_json_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest JSON request body accepted (413.1 beyond)."
    )
    max_entity_bulk_bytes: int = Field(
        default=16_777_216,
        ge=1024,
        description="Largest JSON body of POST …/datasets/{name}/entities (bulk entity creation),"
        " 413.1 beyond.",
    )
    entity_backlog_wait_hours: float = Field(
        default=120.0,
        ge=0,
        description="How long an offline entity update waits for the update it follows before it"
        " is applied anyway (Central: 5 days).",
    )
    entity_backlog_sweep_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="How often the worker applies held offline entity updates past the wait.",
    )
    blob_dir: Path | None = Field(
        default=None,
        description="Where blobs (attachments, uploaded XLSForms) live; default <data_dir>/blobs.",
    )
    blob_store: str = Field(
        default="",
        validation_alias=AliasChoices("ODK_MCP_BLOB_STORE", "BLOB_STORE"),
        pattern=r"^(|file|s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/[\w.\-/]*)?)$",
        description="Blob backend: empty or 'file' (blob_dir on local disk) or 's3://bucket[/prefix]'"
        " (any S3-compatible service).",
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="S3 endpoint for non-AWS services (MinIO, Ceph, R2…); unset = AWS."
    )
    s3_region: str | None = Field(default=None, description="S3 region (unset: boto3's default chain).")
    s3_access_key_id: str | None = Field(
        default=None, description="S3 access key id (unset: AWS_ACCESS_KEY_ID / boto3's default chain)."
    )
    s3_secret_access_key: SecretStr | None = Field(
        default=None, description="S3 secret key (unset: AWS_SECRET_ACCESS_KEY / boto3's default chain)."
    )
    max_form_bytes: int = Field(
        default=50_000_000,
        ge=1024,
        description="Largest form definition upload (XForm or XLSForm), 413.1 beyond.",
    )
    max_attachment_bytes: int = Field(
        default=100_000_000, ge=1024, description="Largest form attachment upload, 413.1 beyond."
    )
    max_submission_bytes: int = Field(
        default=100_000_000,
        ge=1024,
        description="Largest OpenRosa submission (XML plus media), advertised as"
        " X-OpenRosa-Accept-Content-Length.",
    )
    max_submission_xml_bytes: int = Field(
        default=10_000_000, ge=1024, description="Largest submission XML document, 413.1 beyond."
    )
    submission_group_commit: bool = Field(
        default=True,
        description="Commit new submissions in batches (one transaction for many requests; each is "
        "answered after the commit). False: one transaction per submission.",
    )
    submission_batch_max: int = Field(
        default=256, ge=1, le=5000, description="Most new submissions committed in one batch."
    )
    submission_batch_wait_ms: float = Field(
        default=0.0,
        ge=0,
        le=100,
        description="How long a batch waits for more submissions before it is written (0: it takes "
        "what is queued; batches still grow under load while a commit is in flight).",
    )
    submission_batch_writers: int = Field(
        default=1, ge=1, le=16, description="Batches of new submissions written at the same time."
    )
    conversion_workers: int = Field(default=1, ge=1, le=16, description="Processes converting XLSForms.")
    conversion_timeout_seconds: float = Field(
        default=300.0, gt=0, description="An XLSForm conversion is stopped after this long."
    )
    conversion_memory_mb: int = Field(
        default=2048, ge=256, description="Address-space limit of a conversion worker process."
    )
    conversion_wait_seconds: float = Field(
        default=50.0,
        ge=0,
        description="How long an upload waits for conversion before answering 202 with a handle.",
    )
    max_unzipped_bytes: int = Field(
        default=300_000_000,
        ge=1_000_000,
        description="Largest uncompressed size of an uploaded XLSX (zip bombs).",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Fernet key sealing app-user tokens; unset: kept in <data_dir>/secret.key (set it when"
        " several servers share one database).",
    )
    log_level: str = Field(default="INFO", description="Log level: DEBUG, INFO, WARNING or ERROR.")
    log_json: bool = Field(default=True, description="Write logs as JSON lines (false: human-readable).")
    run_migrations_on_start: bool = Field(
        default=True, description="Apply database migrations when the server starts."
    )
    worker_in_process: bool = Field(
        default=True,
        description="Run the event worker inside `odk-mcp serve` (false: only `odk-mcp worker` processes).",
    )
    worker_batch_size: int = Field(
        default=1000, ge=1, le=1000, description="Event deliveries a worker claims at a time."
    )
    worker_coalesce_seconds: float = Field(
        default=0.2,
        ge=0,
        le=5,
        description="How long a woken worker waits for more events to join its batch.",
    )
    worker_max_attempts: int = Field(
        default=8, ge=1, le=100, description="Attempts before a failing event delivery is dead."
    )
    worker_lease_seconds: float = Field(
        default=120.0,
        ge=1,
        description="Time a consumer has for one delivery; a crashed worker's claims are retried after it.",
    )
    worker_backoff_seconds: float = Field(
        default=5.0, ge=0, description="Delay before the first retry; doubles per attempt (capped at 1 h)."
    )
    worker_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often an idle worker looks for due deliveries without a NOTIFY."
    )
    mcp_token: SecretStr | None = Field(
        default=None,
        description="The API token `odk-mcp mcp --stdio` acts with (see POST /v1/users/current/tokens).",
    )
    mcp_allowed_hosts: str = Field(
        default="127.0.0.1:*,localhost:*,[::1]:*",
        description="Comma-separated Host header values /mcp accepts (DNS-rebinding protection; host:* for"
        " any port); the host of public_url is always allowed; '*' turns the check off.",
    )
    mcp_rate_limit: str = Field(
        default="120/minute", description="MCP tool calls allowed per user (limits syntax)."
    )
    mcp_call_timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="An MCP tool call is stopped after this long."
    )
    mcp_max_result_bytes: int = Field(
        default=200_000, ge=10_000, description="Largest MCP result (rows beyond are left for the next page)."
    )
    mcp_media_link_seconds: int = Field(
        default=300, ge=10, le=86_400, description="Lifetime of the media download links MCP tools hand out."
    )

    export_sav_max_rows: int = Field(
        default=250_000,
        ge=1,
        description="Most submissions in one SPSS .sav export (its writer holds the whole table; 422.2"
        " beyond).",
    )
    export_batch_size: int = Field(
        default=2000, ge=10, le=100_000, description="Submissions read from the read model per export batch."
    )
    export_max_streams: int = Field(
        default=4,
        ge=1,
        le=100,
        description="CSV exports streaming from a database connection at once, per process (others wait).",
    )
    export_job_ttl_hours: float = Field(
        default=24.0, gt=0, description="How long a finished export job's file is kept for download."
    )
    export_job_stale_seconds: float = Field(
        default=300.0,
        ge=1,
        description="A running export job without a heartbeat for this long (its server died) is restarted.",
    )
    export_job_max_attempts: int = Field(
        default=3,
        ge=1,
        le=20,
        description="Starts of an export job (after crashes) before it is marked failed.",
    )
    export_job_poll_seconds: float = Field(
        default=2.0, gt=0, description="How often an idle server looks for queued export jobs."
    )
    analytics_wait_seconds: float = Field(
        default=30.0,
        ge=0,
        le=600,
        description="How long a quality scan, enumerator table or report request waits for its analysis job"
        " before answering 202 with the job's handle (0: always a handle).",
    )
    analytics_job_ttl_hours: float = Field(
        default=24.0, gt=0, description="How long a finished analysis job's result is kept."
    )
    analytics_job_stale_seconds: float = Field(
        default=60.0,
        ge=1,
        description="A running analysis job without a heartbeat for this long (its server died) is"
        " restarted.",
    )
    analytics_job_max_attempts: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Starts of an analysis job (after crashes) before it is marked failed.",
    )
    analytics_job_poll_seconds: float = Field(
        default=2.0, gt=0, description="How often an idle server looks for queued or abandoned analysis jobs."
    )
    analytics_job_concurrency: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Analysis jobs one server process runs at once (others wait queued).",
    )
    analytics_themes_max_answers: int = Field(
        default=2000,
        ge=10,
        le=50_000,
        description="Non-empty free-text answers one themes request analyses at most (beyond that, a"
        " seeded random sample of this many, flagged in the answer).",
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="Let webhooks target loopback, private and link-local addresses (tests, closed"
        " networks).",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, description="Time a webhook receiver has to answer one delivery."
    )
    webhook_max_attempts: int = Field(
        default=8, ge=1, le=100, description="Attempts of a webhook delivery before it is failed."
    )
    webhook_backoff_seconds: float = Field(
        default=10.0, ge=0, description="Delay before a webhook delivery's first retry; doubles per attempt."
    )
    webhook_breaker_threshold: int = Field(
        default=5, ge=1, le=1000, description="Consecutive failures that open an endpoint's circuit breaker."
    )
    webhook_breaker_cooldown_seconds: float = Field(
        default=60.0, ge=0, description="How long an open breaker waits before one probe delivery."
    )
    webhook_batch_size: int = Field(
        default=20, ge=1, le=1000, description="Webhook deliveries a sender claims at a time."
    )
    webhook_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often an idle sender looks for due webhook deliveries."
    )

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def blobs(self) -> Path:
        return self.blob_dir if self.blob_dir is not None else self.data_dir / "blobs"

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"
