"""Velero's node agent on a stand-in node: file-system backups and restores of pod volumes, bytes through the bucket.

Velero runs a `node-agent` DaemonSet pod on every node (the chart's templates/node-agent-daemonset.yaml); its
PodVolumeBackup and PodVolumeRestore controllers (vmware-tanzu/velero pkg/controller/
pod_volume_backup_controller.go, pod_volume_restore_controller.go) take the objects the Velero server
creates (pkg/podvolume/backupper.go newPodVolumeBackup, restorer.go newPodVolumeRestore):
* a PodVolumeBackup whose spec.node is this node: the volume's files are uploaded with Kopia into the
  namespace's repository `<prefix>/kopia/<pod namespace>/` of spec.backupStorageLocation's bucket
  (pkg/repository/provider/unified_repo.go, getStorageVariables: the repo prefix is `<bsl prefix>/kopia/<ns>/`),
  then status.phase Completed with snapshotID, path, progress, or Failed with message;
* a PodVolumeRestore whose pod runs on this node: the snapshot is downloaded into the volume, then the done
  file `.velero/<restore uid>` is written into it (pkg/podvolume/restore_micro_service.go, writeCompletionMark),
  which releases the pod's restore-wait init container; status.node, phase Completed or Failed.
Stand-in limits: Kopia's real repository format (encrypted, compressed pack blobs, indexes, manifests) is not
reproduced. Each file's bytes are one object `p<sha256 of the bytes>` (content-addressed as Kopia's content is,
so unchanged files are stored once and shared between snapshots), and the snapshot is one JSON object
`q<snapshot id>` listing the files (path, mode, size, content object). Regular files and directories only.
The agent acts only while the DaemonSet `node-agent` exists in the namespace (its pod would run here).
"""
from __future__ import annotations

import base64
import configparser
import hashlib
import json
import os
from pathlib import Path

from . import node as nodeapi
from . import s3sig
from .apiserver import now_iso

GROUP_PATH = "/apis/velero.io/v1"
TERMINAL = ("Completed", "Failed", "Canceled")


def snapshot_key(repo: str, snapshot_id: str) -> str:
    """The stand-in's snapshot manifest in a namespace's repository."""
    return f"{repo}q{snapshot_id}"


def content_key(repo: str, digest: str) -> str:
    """The stand-in's content object of one file's bytes."""
    return f"{repo}p{digest}"


class NodeAgent:
    """PodVolumeBackups and PodVolumeRestores of one node (driven by its Kubelet's tick)."""

    def __init__(self, kubelet):
        self.kubelet = kubelet
        self.name = kubelet.name

    def tick(self) -> None:
        """Process the new PodVolumeBackups/Restores of every namespace that has a node-agent DaemonSet."""
        daemonsets = self.kubelet.get("/apis/apps/v1/daemonsets", default={"items": []}).get("items") or []
        for namespace in sorted({d["metadata"]["namespace"] for d in daemonsets if d["metadata"]["name"] == "node-agent"}):
            for pvb in self._list(namespace, "podvolumebackups"):
                if (pvb.get("spec") or {}).get("node") == self.name and (pvb.get("status") or {}).get("phase") in (None, "", "New"):
                    self._backup(namespace, pvb)
            for pvr in self._list(namespace, "podvolumerestores"):
                if (pvr.get("status") or {}).get("phase") in (None, "", "New"):
                    self._restore(namespace, pvr)

    def _list(self, namespace: str, plural: str) -> list:
        found = self.kubelet.get(f"{GROUP_PATH}/namespaces/{namespace}/{plural}", default=None)
        return (found or {}).get("items") or []

    def _status(self, namespace: str, plural: str, name: str, status: dict) -> None:
        self.kubelet.api("PATCH", f"{GROUP_PATH}/namespaces/{namespace}/{plural}/{name}", {"status": status}, merge=True)

    def _failed(self, namespace: str, plural: str, name: str, exc: Exception) -> None:
        """A PodVolumeBackup/PodVolumeRestore ends Failed with the error as its message, logged by the node agent."""
        self._status(namespace, plural, name, {"phase": "Failed", "message": f"{type(exc).__name__}: {exc}",
                                               "completionTimestamp": now_iso()})
        what = "backup" if plural == "podvolumebackups" else "restore"
        self.kubelet.log("error", f"node-agent: pod volume {what} {name} failed: {exc}")

    def _bucket(self, namespace: str, location: str) -> tuple:
        """(S3 client, repository prefix `<prefix>/kopia/`) of a BackupStorageLocation, with its credentials."""
        bsl = self.kubelet.get(f"{GROUP_PATH}/namespaces/{namespace}/backupstoragelocations/{location}")
        spec = bsl.get("spec") or {}
        config = spec.get("config") or {}
        cred = spec.get("credential") or {}
        secret_name, secret_key = (cred["name"], cred.get("key")) if cred.get("name") else ("cloud-credentials", "cloud")
        secret = self.kubelet.get(f"/api/v1/namespaces/{namespace}/secrets/{secret_name}")
        parser = configparser.ConfigParser()
        parser.read_string(base64.b64decode(secret["data"][secret_key]).decode())
        section = parser[config.get("profile") or "default"]
        storage = spec.get("objectStorage") or {}
        prefix = (storage.get("prefix") or "").strip("/")
        client = s3sig.Client(config["s3Url"], storage["bucket"], section["aws_access_key_id"].strip(),
                              section["aws_secret_access_key"].strip(), config.get("region") or "us-east-1",
                              verify=str(config.get("insecureSkipTLSVerify", "")).lower() != "true")
        return client, (f"{prefix}/" if prefix else "") + "kopia/"

    def _volume_dir(self, pod_ref: dict, volume: str) -> Path:
        pod = self.kubelet.get(f"/api/v1/namespaces/{pod_ref['namespace']}/pods/{pod_ref['name']}")
        dirs = self.kubelet.volume_dirs(pod)
        if not dirs or volume not in dirs:
            raise ValueError(f"volume {volume} of pod {pod_ref['namespace']}/{pod_ref['name']} is not mounted on {self.name}")
        return dirs[volume]

    def _backup(self, namespace: str, pvb: dict) -> None:
        name, spec = pvb["metadata"]["name"], pvb["spec"]
        started = now_iso()
        self._status(namespace, "podvolumebackups", name, {"phase": "InProgress", "acceptedTimestamp": started,
                                                           "startTimestamp": started})
        try:
            client, kopia = self._bucket(namespace, spec["backupStorageLocation"])
            repo = f"{kopia}{spec['pod']['namespace']}/"
            directory = self._volume_dir(spec["pod"], spec["volume"])
            entries, total, uploaded = [], 0, 0
            for path in sorted(directory.rglob("*")):
                rel = path.relative_to(directory).as_posix()
                if rel == ".velero" or rel.startswith(".velero/") or path.is_symlink():
                    continue
                mode = path.stat().st_mode & 0o7777
                if path.is_dir():
                    entries.append({"path": rel, "type": "d", "mode": mode})
                    continue
                data = path.read_bytes()
                digest = hashlib.sha256(data).hexdigest()
                if not client.exists(content_key(repo, digest)):
                    client.put(content_key(repo, digest), data)
                    uploaded += len(data)
                entries.append({"path": rel, "type": "f", "mode": mode, "size": len(data), "content": digest})
                total += len(data)
            manifest = {"source": {"host": self.name, "path": str(directory)}, "tags": spec.get("tags") or {},
                        "startTime": started, "entries": entries}
            body = json.dumps(manifest, sort_keys=True).encode()
            snapshot_id = hashlib.sha256(body).hexdigest()[:32]
            client.put(snapshot_key(repo, snapshot_id), body)
            self._status(namespace, "podvolumebackups", name, {
                "phase": "Completed", "snapshotID": snapshot_id, "completionTimestamp": now_iso(),
                "path": f"/host_pods/{spec['pod'].get('uid', '')}/volumes/{spec['volume']}",
                "progress": {"totalBytes": total, "bytesDone": total}, "incrementalBytes": uploaded})
            self.kubelet.log("info", f"node-agent: backed up {len(entries)} entries ({total} bytes) of volume "
                                     f"{spec['volume']} of pod {spec['pod']['namespace']}/{spec['pod']['name']}: snapshot {snapshot_id}")
        except (OSError, ValueError, KeyError, nodeapi.HttpError, s3sig.S3Error) as exc:
            self._failed(namespace, "podvolumebackups", name, exc)

    def _restore(self, namespace: str, pvr: dict) -> None:
        name, spec = pvr["metadata"]["name"], pvr["spec"]
        pod = self.kubelet.get(f"/api/v1/namespaces/{spec['pod']['namespace']}/pods/{spec['pod']['name']}", default=None)
        if not pod or (pod.get("spec") or {}).get("nodeName") != self.name:
            return  # another node's (pod_volume_restore_controller.go: the target pod must run on this node)
        try:
            directory = self._volume_dir(spec["pod"], spec["volume"])
        except ValueError:
            return  # not mounted yet: the claim is still being provisioned; try again on the next pass
        started = now_iso()
        self._status(namespace, "podvolumerestores", name, {"phase": "InProgress", "node": self.name,
                                                            "acceptedTimestamp": started, "startTimestamp": started})
        try:
            client, kopia = self._bucket(namespace, spec["backupStorageLocation"])
            repo = f"{kopia}{spec['sourceNamespace']}/"
            manifest = json.loads(client.get(snapshot_key(repo, spec["snapshotID"])))
            total = 0
            for entry in manifest["entries"]:
                target = directory / entry["path"]
                if entry["type"] == "d":
                    target.mkdir(parents=True, exist_ok=True)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    data = client.get(content_key(repo, entry["content"]))
                    if hashlib.sha256(data).hexdigest() != entry["content"]:
                        raise ValueError(f"content of {entry['path']} does not match its digest")
                    target.write_bytes(data)
                    total += len(data)
                os.chmod(target, entry["mode"])
            # writeCompletionMark: .velero/<restore uid> (the PVR's owner, the Restore) releases restore-wait.
            restore_uid = (pvr["metadata"].get("ownerReferences") or [{}])[0].get("uid", "")
            (directory / ".velero").mkdir(exist_ok=True)
            (directory / ".velero" / restore_uid).write_bytes(b"")
            self._status(namespace, "podvolumerestores", name, {"phase": "Completed", "completionTimestamp": now_iso(),
                                                                "progress": {"totalBytes": total, "bytesDone": total}})
            self.kubelet.log("info", f"node-agent: restored snapshot {spec['snapshotID']} ({total} bytes) into volume "
                                     f"{spec['volume']} of pod {spec['pod']['namespace']}/{spec['pod']['name']}")
        except (OSError, ValueError, KeyError, nodeapi.HttpError, s3sig.S3Error) as exc:
            self._failed(namespace, "podvolumerestores", name, exc)
