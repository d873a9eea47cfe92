"""Velero's object-storage layout in a bucket (backups/, restores/, kopia/) through boto3."""
from __future__ import annotations

import configparser
import gzip
import hashlib
import io
import json
import tarfile

from botocore.exceptions import BotoCoreError, ClientError

from . import s3

VALID_TOP_DIRS = {"backups", "restores", "restic", "metadata", "plugins", "kopia"}
# Not restored, like Velero's nonRestorableResources (plus objects the stand-in never backs up).
NON_RESTORABLE = {"nodes", "events", "events.events.k8s.io", "backups.velero.io", "restores.velero.io",
                  "resticrepositories.velero.io", "backuprepositories.velero.io", "csinodes.storage.k8s.io",
                  "volumeattachments.storage.k8s.io", "podvolumebackups.velero.io", "podvolumerestores.velero.io",
                  "datauploads.velero.io", "datadownloads.velero.io", "deletebackuprequests.velero.io",
                  "serverstatusrequests.velero.io", "downloadrequests.velero.io"}
STORAGE_ERRORS = (BotoCoreError, ClientError, OSError)


def gz_json(value) -> bytes:
    """gzip-compressed JSON."""
    return gzip.compress(json.dumps(value, indent=2, sort_keys=True).encode())


def parse_credentials(text: str, profile: str = "default") -> tuple:
    """(access key, secret key) from an AWS credentials file."""
    parser = configparser.ConfigParser()
    parser.read_string(text)
    if not parser.has_section(profile):
        raise ValueError(f"profile {profile!r} not found in the credentials file")
    section = parser[profile]
    return section.get("aws_access_key_id", "").strip(), section.get("aws_secret_access_key", "").strip()


class Location:
    """One BackupStorageLocation's bucket and prefix, with Velero's object names."""

    def __init__(self, name: str, bucket: str, prefix: str, url: str, region: str, access_key: str,
                 secret_key: str, path_style: bool = True, verify=None):
        self.name, self.bucket, self.url = name, bucket, url
        self.prefix = prefix.strip("/")
        self.client = s3.client_for(url, access_key, secret_key, region, path_style, verify)
        self.key = (bucket, self.prefix, url, region, access_key, secret_key, path_style, verify)

    def _join(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in ((self.prefix,) if self.prefix else ()) + parts)

    # names
    def backup_dir(self, backup: str) -> str:
        """<prefix>/backups/<backup>/."""
        return self._join("backups", backup) + "/"

    def backup_key(self, backup: str, suffix: str) -> str:
        """<prefix>/backups/<backup>/<backup><suffix> (velero-backup.json when suffix is that name)."""
        name = suffix if suffix == "velero-backup.json" else backup + suffix
        return self._join("backups", backup, name)

    def restore_key(self, restore: str, suffix: str) -> str:
        """<prefix>/restores/<restore>/restore-<restore><suffix>."""
        return self._join("restores", restore, f"restore-{restore}{suffix}")

    def kopia_dir(self, namespace: str) -> str:
        """<prefix>/kopia/<namespace>/ (one Kopia repository per namespace, like Velero)."""
        return self._join("kopia", namespace) + "/"

    def repo_identifier(self, namespace: str) -> str:
        """The repoIdentifier Velero records in PodVolumeBackups."""
        return f"s3:{self.url.rstrip('/')}/{self.bucket}/{self.kopia_dir(namespace).rstrip('/')}"

    # operations
    def validate(self) -> None:
        """Raise when the bucket is unreachable or its prefix holds foreign top-level directories."""
        self.client.head_bucket(Bucket=self.bucket)
        listing = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._join("") + "/" if self.prefix else "",
                                              Delimiter="/")
        base = len(self.prefix) + 1 if self.prefix else 0
        dirs = sorted(p["Prefix"][base:].strip("/") for p in listing.get("CommonPrefixes") or [])
        invalid = [d for d in dirs if d not in VALID_TOP_DIRS]
        if invalid:
            raise ValueError(f"Backup store contains invalid top-level directories: {invalid}")

    def put(self, key: str, data: bytes) -> None:
        """Upload one object."""
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def get(self, key: str) -> bytes:
        """Download one object."""
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def exists(self, key: str) -> bool:
        """Does the object exist?"""
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def keys(self, prefix: str) -> list:
        """All keys under a prefix."""
        out = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            out.extend(o["Key"] for o in page.get("Contents") or [])
        return out

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under a prefix; returns how many."""
        keys = self.keys(prefix)
        for start in range(0, len(keys), 1000):
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys[start:start + 1000]]})
        return len(keys)

    def backup_names(self) -> list:
        """Backups present in the bucket (directories under backups/ holding velero-backup.json)."""
        base = self._join("backups") + "/"
        return sorted(k[len(base):].split("/", 1)[0] for k in self.keys(base)
                      if k.endswith("/velero-backup.json") and k[len(base):].count("/") == 1)

    def ensure_kopia_repo(self, namespace: str) -> None:
        """Write the Kopia repository marker of a namespace's repository once."""
        key = self.kopia_dir(namespace) + "kopia.repository"
        if not self.exists(key):
            self.put(key, json.dumps({"uniqueID": hashlib.sha256(key.encode()).hexdigest()[:32], "keyAlgo": "scrypt-65536-8-1",
                                      "encryption": "AES256-GCM-HMAC-SHA256", "standin": True}).encode())


def tarball(items: list) -> bytes:
    """Velero's backup tarball: resources/<group resource>/[v<version>-preferredversion/]namespaces|cluster/..."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))

        add("metadata/version", b"1.1.0")
        for group_resource, version, obj in items:
            meta = obj["metadata"]
            scope = f"namespaces/{meta['namespace']}" if meta.get("namespace") else "cluster"
            data = json.dumps(obj, sort_keys=True).encode()
            add(f"resources/{group_resource}/{scope}/{meta['name']}.json", data)
            add(f"resources/{group_resource}/{version}-preferredversion/{scope}/{meta['name']}.json", data)
    return buf.getvalue()


def read_tarball(data: bytes) -> list:
    """[(group resource, obj)] from a backup tarball (the unversioned copies)."""
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")
            if not member.isfile() or parts[0] != "resources" or len(parts) < 4 or parts[2].endswith("-preferredversion"):
                continue
            handle = tar.extractfile(member)
            if handle is not None:
                out.append((parts[1], json.loads(handle.read())))
    return out
