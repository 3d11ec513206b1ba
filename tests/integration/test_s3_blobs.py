"""The S3 blob backend against a real S3 HTTP API on 127.0.0.1 (moto's standalone server):
the store itself, and the whole app storing form and submission media in a bucket."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer
from tests.conftest import Person

from odk_mcp.bootstrap import build_blob_store
from odk_mcp.infra.blobs import digests_of
from odk_mcp.infra.s3_blobs import BlobStoreUnavailable, S3BlobStore, S3Location
from odk_mcp.settings import Settings

BUCKET = "odk-media"
CREDENTIALS = {
    "s3_access_key_id": "test-key",
    "s3_secret_access_key": "test-secret",
    "s3_region": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test-key",
        aws_secret_access_key="test-secret",
    ).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def _store(endpoint: str, url: str = f"s3://{BUCKET}/site-a", **kwargs: int) -> S3BlobStore:
    settings = Settings(blob_store=url, s3_endpoint_url=endpoint, **CREDENTIALS)  # type: ignore[arg-type]
    store = build_blob_store(settings)
    assert isinstance(store, S3BlobStore)
    if kwargs:
        store.multipart_threshold = kwargs["multipart_threshold"]
    return store


def test_locations_parse_and_reject() -> None:
    assert S3Location.parse("s3://bucket") == S3Location("bucket", "")
    assert S3Location.parse("s3://bucket/a/b/") == S3Location("bucket", "a/b/")
    for bad in ("http://bucket/x", "s3:///nobucket", "bucket"):
        with pytest.raises(ValueError, match="not an s3://bucket"):
            S3Location.parse(bad)


def test_put_read_stream_and_dedupe(s3_endpoint: str) -> None:
    store = _store(s3_endpoint)
    data = b"photo bytes " * 1000
    ref = store.put(data)
    assert ref == digests_of(data)
    assert store.exists(ref.sha256)
    assert store.read(ref.sha256) == data
    assert b"".join(store.chunks(ref.sha256, chunk_size=1000)) == data
    assert store.put(data) == ref  # stored once, same name

    keys = [o["Key"] for o in store._client.list_objects_v2(Bucket=BUCKET, Prefix="site-a/")["Contents"]]
    assert keys == [f"site-a/{ref.sha256[:2]}/{ref.sha256[2:4]}/{ref.sha256}"]

    streamed = store.put_stream(io.BytesIO(b"streamed " * 5000), chunk_size=4096)
    assert streamed == digests_of(b"streamed " * 5000)
    assert store.read(streamed.sha256) == b"streamed " * 5000

    assert not store.exists("0" * 64)
    with pytest.raises(ValueError, match="not a sha256"):
        store.read("../../etc/passwd")


def test_large_streams_go_as_multipart_uploads(s3_endpoint: str) -> None:
    store = _store(s3_endpoint, multipart_threshold=1024)
    payload = bytes(range(256)) * 40_000  # ~10 MB: two parts at boto3's 8 MB part size
    ref = store.put_stream(io.BytesIO(payload))
    assert ref.size == len(payload)
    assert store.read(ref.sha256) == payload


def test_a_missing_bucket_is_reported_at_start(s3_endpoint: str) -> None:
    with pytest.raises(BlobStoreUnavailable, match="no-such-bucket"):
        _store(s3_endpoint, "s3://no-such-bucket").check()


XFORM = b"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
        xmlns:jr="http://openrosa.org/javarosa">
  <h:head>
    <h:title>Photo</h:title>
    <model>
      <itext>
        <translation lang="default" default="true()">
          <text id="/data/picture:label"><value form="image">jr://images/logo.png</value></text>
        </translation>
      </itext>
      <instance>
        <data id="photo" version="1">
          <picture/>
          <meta><instanceID/></meta>
        </data>
      </instance>
      <bind nodeset="/data/picture" type="binary"/>
      <bind nodeset="/data/meta/instanceID" type="string" readonly="true()"/>
    </model>
  </h:head>
  <h:body>
    <upload mediatype="image/*" ref="/data/picture"><label ref="jr:itext('/data/picture:label')"/></upload>
  </h:body>
</h:html>"""

SUBMISSION = b"""<data id="photo" version="1"><picture>p.jpg</picture>
<meta><instanceID>uuid:5a3c1b9e-0d7f-4c4e-9a51-1c2d3e4f5a6b</instanceID></meta></data>"""


@pytest.fixture
def settings_overrides(s3_endpoint: str) -> dict[str, object]:
    return {"blob_store": f"s3://{BUCKET}/app", "s3_endpoint_url": s3_endpoint, **CREDENTIALS}


async def test_form_and_submission_media_live_in_the_bucket(
    client: httpx.AsyncClient, admin: Person, settings: Settings
) -> None:
    project = (await client.post("/v1/projects", headers=admin.auth, json={"name": "S3"})).json()["id"]
    base = f"/v1/projects/{project}/forms"
    created = await client.post(
        f"{base}?publish=false", headers={**admin.auth, "Content-Type": "application/xml"}, content=XFORM
    )
    assert created.status_code == 200, created.text
    logo = b"\x89PNG fake logo"
    put = await client.post(f"{base}/photo/draft/attachments/logo.png", headers=admin.auth, content=logo)
    assert put.status_code == 200, put.text
    assert (await client.post(f"{base}/photo/draft/publish", headers=admin.auth)).status_code == 200

    photo = b"\xff\xd8 a jpeg " * 2000
    sent = await client.post(
        f"/v1/projects/{project}/submission",
        headers={**admin.auth, "X-OpenRosa-Version": "1.0"},
        files={
            "xml_submission_file": ("s.xml", SUBMISSION, "text/xml"),
            "p.jpg": ("p.jpg", photo, "image/jpeg"),
        },
    )
    assert sent.status_code == 201, sent.text

    got = await client.get(
        f"{base}/photo/submissions/uuid:5a3c1b9e-0d7f-4c4e-9a51-1c2d3e4f5a6b/attachments/p.jpg",
        headers=admin.auth,
    )
    assert got.status_code == 200 and got.content == photo
    assert (await client.get(f"{base}/photo/attachments/logo.png", headers=admin.auth)).content == logo

    s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint_url, region_name="us-east-1",
                      aws_access_key_id="test-key", aws_secret_access_key="test-secret")  # fmt: skip
    keys = {o["Key"].rsplit("/", 1)[1] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="app/")["Contents"]}
    assert {digests_of(photo).sha256, digests_of(logo).sha256} <= keys
    local = Path(settings.blobs)
    assert not local.exists() or not any(p.is_file() for p in local.rglob("*")), "blobs written to local disk"
