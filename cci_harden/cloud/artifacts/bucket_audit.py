"""Find artifacts whose stored Content-Type is outside the allowlist, and rewrite it when asked.

An object store serves each object with the type stored at upload. A job can upload an HTML page
as ``text/html``; anyone who opens that link runs its script. The audit reads every object's
stored type (HEAD, in parallel) and compares it with the allowlist from the settings; ``--fix``
copies each flagged object onto itself with the safe type, keeping its user metadata, cache and
encoding headers, encryption and storage class, and only if it did not change meanwhile (ETag).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ...config.cloud import ArtifactSettings

# Headers a metadata rewrite must carry over, or S3 would drop them with the old metadata.
_KEPT_HEADERS = ("CacheControl", "ContentEncoding", "ContentLanguage", "Expires")


@dataclass(frozen=True)
class Flagged:
    bucket: str
    key: str
    stored_type: str
    safe_type: str
    fixed: bool = False
    error: str = ""


def _keys(client, bucket: str, prefix: str) -> Iterator[str]:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield item["Key"]


def _copy_args(head: dict, safe_type: str) -> dict:
    args = {
        "ContentType": safe_type,
        "MetadataDirective": "REPLACE",
        "Metadata": head.get("Metadata", {}),
        "CopySourceIfMatch": head["ETag"],
    }
    for name in _KEPT_HEADERS:
        if head.get(name):
            args[name] = head[name]
    if safe_type == "application/octet-stream":
        args["ContentDisposition"] = "attachment"
    elif head.get("ContentDisposition"):
        args["ContentDisposition"] = head["ContentDisposition"]
    if head.get("ServerSideEncryption"):
        args["ServerSideEncryption"] = head["ServerSideEncryption"]
    if head.get("SSEKMSKeyId"):
        args["SSEKMSKeyId"] = head["SSEKMSKeyId"]
    if head.get("StorageClass"):
        args["StorageClass"] = head["StorageClass"]
    return args


def audit_bucket(
    client,
    bucket: str,
    allowlist: ArtifactSettings,
    prefix: str = "",
    fix: bool = False,
    workers: int = 16,
) -> tuple[int, list[Flagged]]:
    """(objects examined, objects outside the allowlist), fixing them when ``fix``."""

    def examine(key: str) -> Flagged | None:
        head = client.head_object(Bucket=bucket, Key=key)
        stored = head.get("ContentType") or ""
        safe = allowlist.safe_type(stored) if stored else "application/octet-stream"
        if safe == stored:
            return None
        flagged = Flagged(bucket, key, stored or "(none)", safe)
        if not fix:
            return flagged
        try:
            client.copy(
                {"Bucket": bucket, "Key": key}, bucket, key, ExtraArgs=_copy_args(head, safe)
            )
        except Exception as exc:  # one object's failure is reported, the others go on
            return Flagged(bucket, key, flagged.stored_type, safe, error=_short(exc))
        return Flagged(bucket, key, flagged.stored_type, safe, fixed=True)

    keys = list(_keys(client, bucket, prefix))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = [r for r in pool.map(examine, keys) if r is not None]
    return len(keys), sorted(results, key=lambda f: f.key)


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def s3_client(endpoint_url: str | None, region: str | None):
    """A boto3 client; credentials come from boto3's usual chain and are never printed."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region or "us-east-1",
        config=Config(retries={"max_attempts": 5, "mode": "standard"}),
    )
