"""The blob store on an S3-compatible service (AWS S3, MinIO, Ceph, Garage, Cloudflare R2…).

Objects are content-addressed like on disk (`<prefix>ab/cd/<sha256>`), so identical content is
stored once and a name never changes meaning. A PUT answers only once the service has stored
the object durably, with `Content-MD5` checked by the service, so the "durable before the row
that names it commits" rule of `infra/blobs.py` holds here too. Streams are spooled to a local
temporary file first: the digest names the object, and it is known only at the end.

boto3 clients are thread-safe; services call these methods from worker threads.
"""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from odk_mcp.infra.blobs import BlobRef, digests_of, digests_of_stream, valid_sha256

# Below this size a stream is sent in one PUT (with Content-MD5); above, as a multipart upload.
MULTIPART_THRESHOLD = 64 * 1024 * 1024
_SPOOL_IN_MEMORY = 8 * 1024 * 1024


class BlobStoreUnavailable(RuntimeError):
    """The configured S3 bucket cannot be reached or used (checked at start)."""


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """`s3://bucket` or `s3://bucket/some/prefix` (the prefix gets a trailing slash)."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"not an s3://bucket[/prefix] URL: {url!r}")
        prefix = parts.path.strip("/")
        return cls(parts.netloc, f"{prefix}/" if prefix else "")


class S3BlobStore:
    def __init__(
        self,
        location: S3Location,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        multipart_threshold: int = MULTIPART_THRESHOLD,
    ) -> None:
        self.location = location
        self.multipart_threshold = multipart_threshold
        # Credentials not given here come from boto3's usual chain (AWS_* variables, files, roles).
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}),
        )

    def key(self, sha256: str) -> str:
        if not valid_sha256(sha256):
            raise ValueError("not a sha256 hex digest")
        return f"{self.location.prefix}{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def check(self) -> None:
        """Fail early, with the reason, if the bucket is not there or not ours to use."""
        try:
            self._client.head_bucket(Bucket=self.location.bucket)
        except ClientError as exc:
            raise BlobStoreUnavailable(
                f"S3 bucket {self.location.bucket!r} is not usable: {exc.response['Error'].get('Code')}"
            ) from exc

    def _size(self, sha256: str) -> int | None:
        try:
            head = self._client.head_object(Bucket=self.location.bucket, Key=self.key(sha256))
        except ClientError as exc:
            if exc.response["Error"].get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return int(head["ContentLength"])

    def exists(self, sha256: str) -> bool:
        return self._size(sha256) is not None

    def put(self, data: bytes) -> BlobRef:
        ref = digests_of(data)
        if self._size(ref.sha256) != ref.size:
            self._client.put_object(
                Bucket=self.location.bucket,
                Key=self.key(ref.sha256),
                Body=data,
                ContentMD5=base64.b64encode(bytes.fromhex(ref.md5)).decode(),
            )
        return ref

    def put_stream(self, source: BinaryIO, chunk_size: int = 1 << 20) -> BlobRef:
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
            ref = digests_of_stream(source, spool, chunk_size)  # type: ignore[arg-type]
            if self._size(ref.sha256) == ref.size:
                return ref
            spool.seek(0)
            key = self.key(ref.sha256)
            if ref.size <= self.multipart_threshold:
                self._client.put_object(
                    Bucket=self.location.bucket,
                    Key=key,
                    Body=spool.read(),
                    ContentMD5=base64.b64encode(bytes.fromhex(ref.md5)).decode(),
                )
            else:
                self._client.upload_fileobj(spool, self.location.bucket, key)
                if self._size(ref.sha256) != ref.size:
                    raise BlobStoreUnavailable(f"the upload of {ref.sha256} did not arrive whole")
        return ref

    def read(self, sha256: str) -> bytes:
        body = self._client.get_object(Bucket=self.location.bucket, Key=self.key(sha256))["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    def chunks(self, sha256: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        body = self._client.get_object(Bucket=self.location.bucket, Key=self.key(sha256))["Body"]
        try:
            yield from body.iter_chunks(chunk_size)
        finally:
            body.close()
