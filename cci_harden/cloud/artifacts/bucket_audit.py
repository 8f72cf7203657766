"""Find artifacts whose stored Content-Type is outside the allowlist, and rewrite it when asked.

An object store serves each object with the type stored at upload. A job can upload an HTML page
as ``text/html``; anyone who opens that link runs its script. The audit reads every object's
stored type (HEAD, in parallel) and compares it with the allowlist from the settings; ``--fix``
copies each flagged object onto itself with the safe type, keeping everything else it carries:
user metadata, cache and encoding headers, encryption, storage class, tags, ACL grants and a
website redirect, and only if it did not change meanwhile (ETag). Objects up to 5 GiB are copied
in one request; larger ones part by part, with the same properties. An object deleted between
the listing and its HEAD is reported as vanished and the audit goes on.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlencode

from ...config.cloud import ArtifactSettings

# Headers a metadata rewrite must carry over, or S3 would drop them with the old metadata.
_KEPT_HEADERS = (
    "CacheControl",
    "ContentEncoding",
    "ContentLanguage",
    "Expires",
    "WebsiteRedirectLocation",
)
# S3 copies one object in one request up to 5 GiB; beyond, part by part.
SINGLE_COPY_LIMIT = 5 * 2**30
PART_BYTES = 512 * 2**20
_GRANT_HEADERS = {
    "READ": "GrantRead",
    "READ_ACP": "GrantReadACP",
    "WRITE_ACP": "GrantWriteACP",
    "FULL_CONTROL": "GrantFullControl",
}


@dataclass(frozen=True)
class Flagged:
    bucket: str
    key: str
    stored_type: str
    safe_type: str
    fixed: bool = False
    error: str = ""
    vanished: bool = False  # deleted between the listing and its HEAD: nothing left to fix


def _keys(client, bucket: str, prefix: str) -> Iterator[str]:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield item["Key"]


def _properties(head: dict, safe_type: str) -> dict:
    """What the rewritten object carries, from its HEAD: everything but the type kept."""
    args: dict = {"ContentType": safe_type, "Metadata": head.get("Metadata", {})}
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


def _grantee(grantee: dict) -> str | None:
    if grantee.get("Type") == "CanonicalUser" and grantee.get("ID"):
        return f'id="{grantee["ID"]}"'
    if grantee.get("Type") == "Group" and grantee.get("URI"):
        return f'uri="{grantee["URI"]}"'
    if grantee.get("Type") == "AmazonCustomerByEmail" and grantee.get("EmailAddress"):
        return f'emailAddress="{grantee["EmailAddress"]}"'
    return None


def _acl_and_tags(client, bucket: str, key: str) -> dict:
    """The object's tags and ACL grants as copy arguments (a copy would otherwise drop them)."""
    args: dict = {}
    tags = client.get_object_tagging(Bucket=bucket, Key=key).get("TagSet", [])
    if tags:
        args["Tagging"] = urlencode([(t["Key"], t["Value"]) for t in tags])
    grants: dict[str, list[str]] = {}
    for grant in client.get_object_acl(Bucket=bucket, Key=key).get("Grants", []):
        header = _GRANT_HEADERS.get(grant.get("Permission", ""))
        who = _grantee(grant.get("Grantee", {}))
        if header and who:
            grants.setdefault(header, []).append(who)
    args.update({header: ", ".join(who) for header, who in grants.items()})
    return args


def _rewrite(client, bucket: str, key: str, head: dict, safe_type: str) -> None:
    args = {**_properties(head, safe_type), **_acl_and_tags(client, bucket, key)}
    source = {"Bucket": bucket, "Key": key}
    size = head.get("ContentLength", 0)
    if size <= SINGLE_COPY_LIMIT:
        client.copy_object(
            Bucket=bucket,
            Key=key,
            CopySource=source,
            CopySourceIfMatch=head["ETag"],
            MetadataDirective="REPLACE",
            TaggingDirective="REPLACE",
            **args,
        )
        return
    upload = client.create_multipart_upload(Bucket=bucket, Key=key, **args)["UploadId"]
    try:
        parts = []
        for number, start in enumerate(range(0, size, PART_BYTES), start=1):
            end = min(start + PART_BYTES, size) - 1
            part = client.upload_part_copy(
                Bucket=bucket,
                Key=key,
                UploadId=upload,
                PartNumber=number,
                CopySource=source,
                CopySourceIfMatch=head["ETag"],
                CopySourceRange=f"bytes={start}-{end}",
            )
            parts.append({"PartNumber": number, "ETag": part["CopyPartResult"]["ETag"]})
        client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
        )
    except Exception:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
        raise


def _vanished(exc: Exception) -> bool:
    error = getattr(exc, "response", {}).get("Error", {})
    return str(error.get("Code")) in ("404", "NoSuchKey", "NotFound")


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
        try:
            head = client.head_object(Bucket=bucket, Key=key)
        except Exception as exc:  # this object only: reported, the others go on
            if _vanished(exc):
                return Flagged(bucket, key, "(gone)", "-", vanished=True)
            return Flagged(bucket, key, "(unknown)", "-", error=_short(exc))
        stored = head.get("ContentType") or ""
        safe = allowlist.safe_type(stored) if stored else "application/octet-stream"
        if safe == stored:
            return None
        flagged = Flagged(bucket, key, stored or "(none)", safe)
        if not fix:
            return flagged
        try:
            _rewrite(client, bucket, key, head, safe)
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
