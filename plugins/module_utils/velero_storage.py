# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checking that a backup's files are in its BackupStorageLocation's bucket, with boto3 (velero_backup_info
verify_storage): the keys Velero writes, the location's credentials, one S3 client per location.
"""

from __future__ import annotations

import configparser

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.infra.k3s.plugins.module_utils.velero_bodies import (
    LOCATIONS,
    VeleroError,
)
from ansible_collections.infra.k3s.plugins.module_utils.velero_select import (
    default_location,
    storage_location_of,
)


def _import_boto3():
    """boto3 and botocore.config, imported only when verify_storage needs them (they take a while to import)."""
    try:
        import boto3  # pylint: disable=import-outside-toplevel
        import botocore.config  # pylint: disable=import-outside-toplevel
    except ImportError as exc:
        raise VeleroError(missing_required_lib("boto3"), exception=str(exc))
    return boto3, botocore.config


def _ini_credentials(text, profile):
    parser = configparser.ConfigParser()
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    section = profile if parser.has_section(profile) else (parser.sections()[0] if parser.sections() else None)
    if section is None:
        return None
    key = parser.get(section, "aws_access_key_id", fallback=None)
    secret = parser.get(section, "aws_secret_access_key", fallback=None)
    return (key, secret) if key and secret else None


class StorageChecker(object):
    """Checks that a backup's files are in its BackupStorageLocation's bucket (one S3 client per location)."""

    def __init__(self, api, params, client_factory=None):
        self.api = api
        self.params = params
        self.client_factory = client_factory or self._boto3_client
        self.locations = {}
        self.clients = {}

    @staticmethod
    def _boto3_client(**kwargs):
        boto3, botocore_config = _import_boto3()
        if "addressing_style" in kwargs:
            kwargs["config"] = botocore_config.Config(s3={"addressing_style": kwargs.pop("addressing_style")},
                                                      retries={"max_attempts": 2}, connect_timeout=10, read_timeout=30)
        return boto3.client("s3", **kwargs)

    def _location(self, name):
        if name not in self.locations:
            self.locations[name] = self.api.get(LOCATIONS, name) if name else default_location(self.api)
        return self.locations[name]

    def _credentials(self, location):
        if self.params.get("aws_access_key_id") and self.params.get("aws_secret_access_key"):
            return self.params["aws_access_key_id"], self.params["aws_secret_access_key"]
        spec = location.get("spec") or {}
        credential = spec.get("credential") or {"name": "cloud-credentials", "key": "cloud"}
        text = self.api.secret_value(credential.get("name") or "cloud-credentials", credential.get("key") or "cloud")
        if text:
            return _ini_credentials(text, (spec.get("config") or {}).get("profile") or "default")
        return None

    def _client(self, location):
        name = location["metadata"]["name"]
        if name not in self.clients:
            config = (location.get("spec") or {}).get("config") or {}
            kwargs = dict(region_name=config.get("region") or "us-east-1")
            url = self.params.get("s3_url") or config.get("s3Url")
            if url:
                kwargs["endpoint_url"] = url
            kwargs["addressing_style"] = "path" if str(config.get("s3ForcePathStyle", "")).lower() == "true" or url else "auto"
            creds = self._credentials(location)
            if creds:
                kwargs.update(aws_access_key_id=creds[0], aws_secret_access_key=creds[1])
            self.clients[name] = (self.client_factory(**kwargs), url)
        return self.clients[name]

    def keys(self, location, backup_name):
        prefix = ((location.get("spec") or {}).get("objectStorage") or {}).get("prefix") or ""
        base = "%s/backups/%s/" % (prefix.strip("/"), backup_name) if prefix.strip("/") else "backups/%s/" % backup_name
        return [base + "velero-backup.json", base + "%s.tar.gz" % backup_name]

    def verify(self, backup):
        """(verified, missing_keys, where) for one backup."""
        name = backup["metadata"]["name"]
        location_name = storage_location_of(backup)
        location = self._location(location_name)
        if location is None:
            raise VeleroError("BackupStorageLocation %s/%s of backup %s does not exist: cannot check its files"
                              % (self.api.namespace, location_name or "(default)", name))
        bucket = ((location.get("spec") or {}).get("objectStorage") or {}).get("bucket")
        client, url = self._client(location)
        missing = []
        for key in self.keys(location, name):
            if not self._exists(client, url, bucket, key):
                missing.append(key)
        return not missing, missing, {"bucket": bucket, "endpoint": url, "storage_location": location["metadata"]["name"]}

    @staticmethod
    def _exists(client, url, bucket, key):
        try:
            client.head_object(Bucket=bucket, Key=key)
            return True
        except Exception as exc:  # botocore's errors, without importing it when boto3 is missing
            response = getattr(exc, "response", None) or {}
            code = str((response.get("Error") or {}).get("Code") or "")
            status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
            if code in ("404", "NoSuchKey", "NotFound") or status == 404:
                return False
            if response:
                where = " at %s" % url if url else ""
                raise VeleroError("Object storage answered %s %s for s3://%s/%s%s: check the credentials (aws_access_key_id, or the "
                                  "location's credentials secret) and s3_url" % (status or "", code, bucket, key, where))
            raise VeleroError("Could not reach object storage for s3://%s/%s%s: %s" % (bucket, key, " at %s" % url if url else "", exc))
