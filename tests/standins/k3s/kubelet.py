"""The node's share of the stand-in K3s: local-path's volume directories and the pods' processes.

What K3s does on a node, in as far as the data path needs it:
* local-path (rancher/local-path-provisioner provisioner.go, provisionFor/deleteFor with K3s's
  local-path-config in k3s-io/k3s manifests/local-storage.yaml): when a claim is provisioned, a helper
  pod on the chosen node runs the `setup` script (`mkdir -m 0777 -p "$VOL_DIR"; chmod 700 "$VOL_DIR/.."`),
  VOL_DIR being `<base>/<pv name>_<namespace>_<claim>` with base /var/lib/rancher/k3s/storage; when the
  volume is deleted (reclaim policy Delete), the `teardown` script (`rm -rf "$VOL_DIR"`). The stand-in has no
  provisioner controller (the PVs are made by the caller or the stand-in Velero's restore), so the node
  itself runs those two scripts' effects for every local-path PV pinned to it (nodeAffinity
  kubernetes.io/hostname): the directory when it first sees the PV, its removal when a PV with reclaim
  policy Delete it saw is gone.
* The kubelet: a pod bound to this node (spec.nodeName) gets its volumes (a claim's PV path, hostPath,
  emptyDir under /var/lib/kubelet/pods/<uid>/volumes/kubernetes.io~empty-dir/<name>), runs its init
  containers, then each container with a `command` as a process on the node, and reports the pod Running.
  Stand-in limits: no image, no mount namespace: every argument of command/args that contains a volume's
  mountPath has it replaced by that volume's host directory (longest mountPath first); a container
  without `command` (image entrypoint) runs nothing but is reported running. Velero's `restore-wait`
  init container is Velero's restore helper (vmware-tanzu/velero cmd/velero-restore-helper/
  velero-restore-helper.go): it waits until every volume mounted under /restores/ holds
  `.velero/<restore uid>` (args[0]), then removes those `.velero` directories. A deleted pod's processes
  are stopped (SIGTERM, then SIGKILL after 5 s). The processes live in their own session and outlive the
  k3s process, as containers outlive `systemctl stop k3s` (the unit's KillMode=process); a restarted
  k3s adopts them from their pid files under /run/k3s-standin/pods/.
* Velero's node agent, when the DaemonSet `node-agent` exists (podvolume.py).

`host_root` (K3S_STANDIN_HOST_ROOT) prefixes every host path: "/" on a lab node, a temporary directory in
pytest. Pod processes run only where the stand-in acts as a node (netstate.wanted) or with
K3S_STANDIN_KUBELET=1.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from . import node as nodeapi
from .apiserver import now_iso

LOCAL_PATH = "rancher.io/local-path"
RESTORE_HELPER = "restore-wait"


def pv_node(pv: dict) -> str | None:
    """The node a local PV is pinned to (nodeAffinity kubernetes.io/hostname In [node])."""
    terms = (((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {}).get("nodeSelectorTerms") or []
    for term in terms:
        for expr in term.get("matchExpressions") or []:
            if expr.get("key") == "kubernetes.io/hostname" and expr.get("operator") == "In" and expr.get("values"):
                return expr["values"][0]
    return None


def pv_path(pv: dict) -> str | None:
    """The directory of a local or hostPath PV."""
    spec = pv.get("spec") or {}
    return ((spec.get("local") or spec.get("hostPath") or {}).get("path")) or None


class Kubelet:  # pylint: disable=too-many-instance-attributes
    """Polls the API for this node's PVs and pods; tick() is one pass, start() runs it in a thread."""

    def __init__(self, url: str, context, auth: str, node_name: str, host_root: str | Path = "/",
                 interval: float = 1.0, log=None):
        self.url, self.context, self.auth, self.name = url.rstrip("/"), context, auth, node_name
        self.root = Path(host_root)
        self.interval = interval
        self.log = log or (lambda level, msg: None)
        self.pods: dict = {}  # uid -> {"procs": [Popen or pid], "started": bool}
        self.local_pvs: dict = {}  # PV name -> (host path, reclaim policy) of local-path PVs on this node
        self.stopped = threading.Event()
        from .podvolume import NodeAgent  # pylint: disable=import-outside-toplevel
        self.agent = NodeAgent(self)

    # API
    def api(self, method: str, path: str, body=None, merge: bool = False):
        """One request to the API server as this node."""
        return nodeapi.request(self.url + path, self.context, method, body, self.auth,
                               "application/merge-patch+json" if merge else "application/json", timeout=15)

    def get(self, path: str, default=KeyError):
        """GET, or default on 404 when given."""
        try:
            return self.api("GET", path)
        except nodeapi.HttpError as err:
            if err.code == 404 and default is not KeyError:
                return default
            raise

    def host(self, path: str) -> Path:
        """A node path under host_root."""
        return self.root / str(path).lstrip("/")

    # loop
    def start(self) -> "Kubelet":
        """Run tick() every interval seconds in a daemon thread."""
        threading.Thread(target=self.loop, daemon=True, name=f"kubelet-{self.name}").start()
        return self

    def loop(self) -> None:
        """Until stopped."""
        while not self.stopped.wait(self.interval):
            try:
                self.tick()
            except (nodeapi.HttpError, OSError, ValueError, KeyError) as exc:
                self.log("error", f"kubelet: {type(exc).__name__}: {exc}")

    def stop(self) -> None:
        """Stop the loop (the pods' processes keep running, as containers outlive K3s)."""
        self.stopped.set()

    def stop_pods(self) -> None:
        """Stop every pod process this kubelet started (tests' clean-up)."""
        for uid in list(self.pods):
            self._stop_pod(uid)

    def tick(self) -> None:
        """One pass: local-path directories, pods, the node agent."""
        pvs = {pv["metadata"]["name"]: pv for pv in self.api("GET", "/api/v1/persistentvolumes").get("items") or []}
        self._local_path(pvs)
        pods = [p for p in self.api("GET", "/api/v1/pods").get("items") or []
                if (p.get("spec") or {}).get("nodeName") == self.name and not p["metadata"].get("deletionTimestamp")]
        mine = {p["metadata"]["uid"]: p for p in pods}
        for uid in [u for u in self.pods if u not in mine]:
            self._stop_pod(uid)
        for uid, pod in mine.items():
            if not (self.pods.get(uid) or {}).get("started"):
                self._start_pod(pod, pvs)
        self.agent.tick()

    # local-path
    def _local_path(self, pvs: dict) -> None:
        for name, pv in pvs.items():
            annotations = pv["metadata"].get("annotations") or {}
            path = pv_path(pv)
            if annotations.get("pv.kubernetes.io/provisioned-by") != LOCAL_PATH or pv_node(pv) != self.name or not path:
                continue
            if name not in self.local_pvs:
                directory = self.host(path)
                if not directory.is_dir():
                    # setup: mkdir -m 0777 -p "$VOL_DIR"; chmod 700 "$VOL_DIR/.."
                    directory.mkdir(parents=True, exist_ok=True)
                    directory.chmod(0o777)
                    directory.parent.chmod(0o700)
                    self.log("info", f"local-path: created {path} for {name}")
            self.local_pvs[name] = (path, (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy", "Delete"))
        for name in [n for n in self.local_pvs if n not in pvs]:
            path, policy = self.local_pvs.pop(name)
            if policy == "Delete":
                shutil.rmtree(self.host(path), ignore_errors=True)  # teardown: rm -rf "$VOL_DIR"
                self.log("info", f"local-path: deleted {path} of {name}")

    # pods
    def volume_dirs(self, pod: dict, pvs: dict | None = None) -> dict | None:
        """{volume name: host directory} of a pod's volumes, or None while one is not ready (claim unbound, no dir)."""
        meta, out = pod["metadata"], {}
        for vol in (pod.get("spec") or {}).get("volumes") or []:
            if vol.get("persistentVolumeClaim"):
                claim = self.get(f"/api/v1/namespaces/{meta['namespace']}/persistentvolumeclaims/"
                                 f"{vol['persistentVolumeClaim']['claimName']}", default=None)
                volume = ((claim or {}).get("spec") or {}).get("volumeName")
                if not claim or (claim.get("status") or {}).get("phase") != "Bound" or not volume:
                    return None
                pv = (pvs or {}).get(volume) or self.get(f"/api/v1/persistentvolumes/{volume}", default=None)
                path = pv_path(pv or {})
                if not path or not self.host(path).is_dir():  # the kubelet's mount fails: the path must exist
                    return None
                out[vol["name"]] = self.host(path)
            elif vol.get("hostPath"):
                directory = self.host(vol["hostPath"]["path"])
                if vol["hostPath"].get("type") == "DirectoryOrCreate":
                    directory.mkdir(parents=True, exist_ok=True)
                out[vol["name"]] = directory
            elif "emptyDir" in vol:
                directory = self.host(f"/var/lib/kubelet/pods/{meta['uid']}/volumes/kubernetes.io~empty-dir/{vol['name']}")
                directory.mkdir(parents=True, exist_ok=True)
                out[vol["name"]] = directory
        return out

    @staticmethod
    def _argv(container: dict, dirs: dict) -> list:
        mounts = sorted(((m["mountPath"].rstrip("/") or "/", dirs[m["name"]]) for m in container.get("volumeMounts") or []
                         if m.get("name") in dirs), key=lambda item: -len(item[0]))
        out = []
        for arg in (container.get("command") or []) + (container.get("args") or []):
            for mount_path, directory in mounts:
                arg = arg.replace(mount_path, str(directory))
            out.append(arg)
        return out

    def _pid_file(self, uid: str, container: str) -> Path:
        return self.host(f"/run/k3s-standin/pods/{uid}/{container}.pid")

    def _start_pod(self, pod: dict, pvs: dict) -> None:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        uid, ident = meta["uid"], f"{meta['namespace']}/{meta['name']}"
        dirs = self.volume_dirs(pod, pvs)
        if dirs is None:
            return  # volumes not ready yet (ContainerCreating)
        for init in spec.get("initContainers") or []:
            if init.get("name") == RESTORE_HELPER:
                if not self._restores_done(init, dirs):
                    return  # Init:0/1 until the node agent wrote the done files
            elif init.get("command") and not (self.pods.get(uid) or {}).get(f"init-{init['name']}"):
                result = subprocess.run(self._argv(init, dirs), stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
                                        check=False)
                if result.returncode != 0:
                    self.log("warning", f"kubelet: init container {init['name']} of {ident} exited {result.returncode}")
                    return
                self.pods.setdefault(uid, {})[f"init-{init['name']}"] = True
        procs = []
        for container in spec.get("containers") or []:
            pid_file = self._pid_file(uid, container["name"])
            pid = self._adopt(pid_file)
            if pid is None and container.get("command"):
                log_dir = self.host(f"/var/log/pods/{meta['namespace']}_{meta['name']}_{uid}/{container['name']}")
                log_dir.mkdir(parents=True, exist_ok=True)
                env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME": meta["name"]}
                env.update({e["name"]: str(e.get("value", "")) for e in container.get("env") or [] if "name" in e})
                with open(log_dir / "0.log", "ab") as out:
                    proc = subprocess.Popen(self._argv(container, dirs), stdin=subprocess.DEVNULL, stdout=out,  # pylint: disable=consider-using-with
                                            stderr=subprocess.STDOUT, env=env, cwd=str(self.root), start_new_session=True)
                pid_file.parent.mkdir(parents=True, exist_ok=True)
                pid_file.write_text(f"{proc.pid}\n", encoding="utf-8")
                procs.append(proc)
                self.log("info", f"kubelet: started container {container['name']} of {ident} (pid {proc.pid})")
            elif pid is not None:
                procs.append(pid)
        self.pods.setdefault(uid, {}).update(procs=procs, started=True)
        now = now_iso()
        statuses = [{"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": True, "started": True,
                     "restartCount": 0, "state": {"running": {"startedAt": now}}} for c in spec.get("containers") or []]
        conditions = [{"type": t, "status": "True", "lastTransitionTime": now}
                      for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")]
        self.api("PATCH", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
                 {"status": {"phase": "Running", "startTime": now, "conditions": conditions, "containerStatuses": statuses}},
                 merge=True)

    @staticmethod
    def _adopt(pid_file: Path) -> int | None:
        try:
            pid = int(pid_file.read_text(encoding="utf-8").strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def _restores_done(self, init: dict, dirs: dict) -> bool:
        """velero-restore-helper's done(): every /restores/<volume> holds .velero/<restore uid>."""
        restore_uid = (init.get("args") or [""])[0]
        mounted = [dirs[m["name"]] for m in init.get("volumeMounts") or [] if m.get("name") in dirs
                   and m.get("mountPath", "").startswith("/restores/")]
        if not all((d / ".velero" / restore_uid).is_file() for d in mounted):
            return False
        for directory in mounted:  # removeFolder(): the .velero directories go once all are done
            shutil.rmtree(directory / ".velero", ignore_errors=True)
        return True

    def _stop_pod(self, uid: str) -> None:
        state = self.pods.pop(uid, {})
        for proc in state.get("procs") or []:
            pid = proc.pid if isinstance(proc, subprocess.Popen) else proc
            try:
                os.killpg(pid, signal.SIGTERM)
            except OSError:
                continue
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                if isinstance(proc, subprocess.Popen) and proc.poll() is not None:
                    break
                try:
                    os.kill(pid, 0)
                except OSError:
                    break
                time.sleep(0.1)
            else:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
            if isinstance(proc, subprocess.Popen):
                proc.wait(timeout=5)
        shutil.rmtree(self.host(f"/run/k3s-standin/pods/{uid}"), ignore_errors=True)
        if state.get("started"):
            self.log("info", f"kubelet: stopped the containers of pod {uid}")


def wanted(data_dir: Path, default_data_dir: Path) -> bool:
    """Pod processes only where the stand-in is a node (see netstate.wanted), or with K3S_STANDIN_KUBELET=1."""
    from . import netstate  # pylint: disable=import-outside-toplevel
    flag = os.environ.get("K3S_STANDIN_KUBELET")
    return flag == "1" or (flag != "0" and netstate.wanted(data_dir, default_data_dir))
