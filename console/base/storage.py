"""Where recordings, voicemail and the businesses' sounds are kept, once each: a folder (the
embedded mode, `RECORDINGS_DIR`) or an S3-compatible bucket (for scale, `RECORDINGS_S3_BUCKET`
with `RECORDINGS_S3_ENDPOINT` for a server other than AWS). Both answer the same four things:
keep bytes under a key, its size, a byte range of it (a player seeking in a long call asks for
the part it needs, and S3 serves that range itself), and forget it. Keys are made here, never
taken from a request. boto3 is blocking: its calls run in a thread."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any, Protocol

from console.base.config import Settings


class Missing(Exception):
    """Nothing is kept under that key (erased meanwhile, or never written)."""


class Store(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> None: ...
    async def size(self, key: str) -> int: ...
    async def read(self, key: str, start: int, end: int) -> bytes: ...  # end inclusive
    async def delete(self, key: str) -> None: ...


def new_key(business_id: uuid.UUID, kind: str, extension: str) -> str:
    return f"{business_id}/{kind}/{uuid.uuid4().hex}.{extension}"


class FolderStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise Missing(key)
        return path

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".part")
            partial.write_bytes(data)
            partial.replace(path)

        await asyncio.to_thread(write)

    async def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise Missing(key) from None

    async def read(self, key: str, start: int, end: int) -> bytes:
        path = self._path(key)

        def read_part() -> bytes:
            with path.open("rb") as f:
                f.seek(start)
                return f.read(end - start + 1)

        try:
            return await asyncio.to_thread(read_part)
        except FileNotFoundError:
            raise Missing(key) from None

    async def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3Store:
    def __init__(self, settings: Settings) -> None:
        import boto3

        assert settings.recordings_s3_bucket
        self.bucket = settings.recordings_s3_bucket
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=settings.recordings_s3_endpoint,
            region_name=settings.recordings_s3_region,
            aws_access_key_id=settings.recordings_s3_key_id,
            aws_secret_access_key=settings.recordings_s3_secret,
        )

    def _missing(self, error: Exception) -> bool:
        code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
        return code in ("NoSuchKey", "404", "NotFound")

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(
            self.client.put_object, Bucket=self.bucket, Key=key, Body=data, ContentType=content_type
        )

    async def size(self, key: str) -> int:
        try:
            head = await asyncio.to_thread(self.client.head_object, Bucket=self.bucket, Key=key)
        except Exception as error:
            if self._missing(error):
                raise Missing(key) from None
            raise
        return int(head["ContentLength"])

    async def read(self, key: str, start: int, end: int) -> bytes:
        def get() -> bytes:
            found = self.client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end}"
            )
            return bytes(found["Body"].read())

        try:
            return await asyncio.to_thread(get)
        except Exception as error:
            if self._missing(error):
                raise Missing(key) from None
            raise

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=key)


def store_of(settings: Settings) -> Store | None:
    """The store the settings name (a bucket before a folder), or None: nothing is recorded."""
    if settings.recordings_s3_bucket:
        return S3Store(settings)
    if settings.recordings_dir:
        return FolderStore(settings.recordings_dir)
    return None
