"""infra.k3s.velero_* modules run by ansible-playbook against the K3s stand-in API server (tests/standins/k3s)
with Velero's five CRDs registered, so every object the modules send is validated against Velero's schemas.

Velero itself is simulated two ways:
- FakeVelero below, a tiny thread that gives Backups/Restores the phase a test asks for (deterministic, fast);
- the stand-in Velero controller (tests/standins/velero) with a moto S3 server, end to end, when it is there.
Faults (HTTP 409 Conflict, 5xx) come from FaultProxy, a plain-HTTP proxy in front of the stand-in.
"""
from __future__ import annotations

import base64
import datetime
import http.server
import itertools
import json
import os
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/, for support.*
from standins.k3s import apiserver  # noqa: E402
from support.paths import CONTRACTS  # noqa: E402

VELERO_CRDS = sorted((CONTRACTS / "velero").glob("velero.io_*.yaml"))
GROUP, VERSION = "velero.io", "v1"
# Variables the modules read as fallbacks: the tests must not inherit them (an empty value counts as set).
# The connection options' environment variables (module_utils/kubernetes.py, as kubernetes.core reads them).
FALLBACK_VARIABLES = tuple("K8S_AUTH_" + name for name in (
    "KUBECONFIG", "CONTEXT", "HOST", "API_KEY", "USERNAME", "PASSWORD", "VALIDATE_CERTS", "VERIFY_SSL", "CA_CERT", "SSL_CA_CERT",
    "CLIENT_CERT", "CERT_FILE", "CLIENT_KEY", "KEY_FILE", "PROXY", "NO_PROXY", "PERSIST_CONFIG", "IMPERSONATE_USER",
    "IMPERSONATE_GROUPS", "PROXY_HEADERS_PROXY_BASIC_AUTH", "PROXY_HEADERS_BASIC_AUTH", "PROXY_HEADERS_USER_AGENT")) + (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
HAS_CONTROLLER = (HERE.parent / "standins" / "velero" / "controller.py").exists()
COUNTER = itertools.count(1)


# ---------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def k8s(tmp_path_factory):
    handle = apiserver.start_server(tmp_path_factory.mktemp("velero-api"), crds=VELERO_CRDS)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def kube(k8s):
    return config.new_client_from_config(k8s.kubeconfig_path)


class Cluster(object):
    """Test-side access to one Velero namespace of the stand-in (a fresh namespace per test)."""

    def __init__(self, kube, namespace):
        self.kube = kube
        self.ns = namespace
        self.custom = client.CustomObjectsApi(kube)
        self.core = client.CoreV1Api(kube)
        self.core.create_namespace({"metadata": {"name": namespace}})

    def get(self, plural, name):
        try:
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, plural, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, plural, selector=None):
        kwargs = {"label_selector": selector} if selector else {}
        return self.custom.list_namespaced_custom_object(GROUP, VERSION, self.ns, plural, **kwargs)["items"]

    def create(self, plural, name, spec, status=None, labels=None):
        body = {"apiVersion": "velero.io/v1", "kind": plural_kind(plural),
                "metadata": {"name": name, "namespace": self.ns, "labels": labels or {}}, "spec": spec}
        obj = self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, plural, body)
        if status is not None:
            obj = self.set_status(plural, name, status)
        return obj

    def set_status(self, plural, name, status):
        """Set status like Velero does (Velero's CRDs have no status subresource: a plain patch)."""
        return self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.ns, plural, name, {"status": status},
                                                          _content_type="application/merge-patch+json")

    def location(self, name="default", phase="Available", default=True, **spec):
        body = {"provider": "aws", "objectStorage": {"bucket": "bucket"}, "default": default}
        body.update(spec)
        return self.create("backupstoragelocations", name, body, status={"phase": phase} if phase else None)

    def configmap(self, name):
        try:
            return self.kube.sanitize_for_serialization(self.core.read_namespaced_config_map(name, self.ns))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise


def plural_kind(plural):
    return {"backups": "Backup", "restores": "Restore", "schedules": "Schedule", "backupstoragelocations": "BackupStorageLocation",
            "deletebackuprequests": "DeleteBackupRequest"}[plural]


@pytest.fixture
def cluster(kube):
    return Cluster(kube, "velero-t%d" % next(COUNTER))


def stamp(minutes_ago):
    when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=minutes_ago)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeVelero(object):
    """Moves new Backups/Restores of a namespace to the phase outcomes[name] says (default Completed) after `delay`."""

    def __init__(self, cluster, outcomes=None, delay=0.3, status_extra=None):
        self.cluster = cluster
        self.outcomes = dict(outcomes or {})
        self.status_extra = dict(status_extra or {})
        self.delay = delay
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.thread.join(5)

    def _run(self):
        seen = {}
        while not self.stop_event.wait(0.1):
            for plural in ("backups", "restores"):
                for obj in self.cluster.list(plural):
                    name = obj["metadata"]["name"]
                    if (obj.get("status") or {}).get("phase"):
                        continue
                    first = seen.setdefault((plural, name), time.monotonic())
                    if time.monotonic() - first < self.delay:
                        continue
                    phase = self.outcomes.get(name, "Completed")
                    if phase == "never":
                        self.cluster.set_status(plural, name, {"phase": "InProgress", "progress": {"totalItems": 10}})
                        continue
                    status = {"phase": phase, "startTimestamp": stamp(0), "completionTimestamp": stamp(0),
                              "errors": 2 if phase == "PartiallyFailed" else 0, "warnings": 1}
                    if phase == "Failed":
                        status["failureReason"] = "the bucket went away"
                    if phase == "FailedValidation":
                        status["validationErrors"] = ["an existing backup storage location was not specified"]
                    status.update(self.status_extra.get(name, {}))
                    self.cluster.set_status(plural, name, status)


class FaultProxy(object):
    """Plain HTTP in front of the stand-in's HTTPS; answers chosen requests with an error instead of forwarding them.

    rule: dict(method=, path_endswith=, status=, reason=, count=, forward=) - with forward=True the request is
    forwarded first (its effect happens) and the answer replaced by the error.
    """

    def __init__(self, k8s):
        self.upstream = k8s.url
        self.context = ssl.create_default_context(cafile=k8s.ca_path)
        self.rules = []
        self.log = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else None
                status, body, ctype = proxy.handle(self.command, self.path, dict(self.headers), data)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add(self, **rule):
        rule.setdefault("count", 1)
        rule.setdefault("forward", False)
        self.rules.append(rule)

    def handle(self, method, path, headers, data):
        rule = None
        for candidate in self.rules:
            if candidate["count"] > 0 and candidate["method"] == method and path.split("?")[0].endswith(candidate["path_endswith"]):
                rule = candidate
                break
        forwarded = None
        if rule is None or rule["forward"]:
            forwarded = self._forward(method, path, headers, data)
        if rule is None:
            self.log.append((method, path, forwarded[0]))
            return forwarded
        rule["count"] -= 1
        status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": rule["status"],
                  "reason": rule["reason"], "message": rule.get("message", "injected %s" % rule["reason"])}
        self.log.append((method, path, rule["status"]))
        return rule["status"], json.dumps(status).encode(), "application/json"

    def _forward(self, method, path, headers, data):
        keep = dict((k, v) for k, v in headers.items() if k.lower() in ("authorization", "content-type", "accept"))
        request = urllib.request.Request(self.upstream + path, data=data, method=method, headers=keep)
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=30) as resp:
                return resp.status, resp.read(), resp.headers.get("Content-Type", "application/json")
        except urllib.error.HTTPError as err:
            return err.code, err.read(), err.headers.get("Content-Type", "application/json")

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(k8s):
    handle = FaultProxy(k8s)
    yield handle
    handle.stop()


# ---------------------------------------------------------------------------------------
# Running modules
# ---------------------------------------------------------------------------------------

class Runner(object):
    """Runs module tasks with ansible-playbook and returns their registered results.

    Each positional item is a task (a dict with "module") or a list of tasks run in that order. Items are
    independent: each runs on its own inventory host (all local) under the free strategy, so they run in
    parallel (a module run costs about 3 s, most of it Python starting and importing the kubernetes client).
    A task may carry "check_mode"/"diff" task keywords. Returns one result per item (a list for a list).
    """

    def __init__(self, run_ansible, tmp_path, k8s, cluster):
        self.run_ansible = run_ansible
        self.tmp_path = tmp_path
        self.k8s = k8s
        self.cluster = cluster
        self.count = 0
        self.last = None

    def __call__(self, *items, check=False, diff=False, defaults=None, env=None, verbosity=0):
        self.count += 1
        group_defaults = dict(defaults if defaults is not None else {"kubeconfig": self.k8s.kubeconfig_path}, namespace=self.cluster.ns)
        sequences = [list(item) if isinstance(item, list) else [item] for item in items]
        play_tasks = []
        for host, sequence in enumerate(sequences):
            for step, task in enumerate(sequence):
                task = dict(task)
                module = "infra.k3s." + task.pop("module")
                keywords = dict((key, task.pop(key)) for key in ("check_mode", "diff") if key in task)
                if task.get("wait"):
                    task.setdefault("wait_sleep", 1)
                entry = {"name": "h%d step %d" % (host, step), module: task, "register": "r%d_%d" % (host, step),
                         "ignore_errors": True, "when": "inventory_hostname == 'h%d'" % host}
                entry.update(keywords)
                play_tasks.append(entry)
        for host, sequence in enumerate(sequences):
            play_tasks.append({"name": "save results h%d" % host, "when": "inventory_hostname == 'h%d'" % host,
                               "ansible.builtin.debug": {"msg": "SAVED-h%d {{ [%s] | to_json }}" % (host, ", ".join(
                                   "r%d_%d" % (host, step) for step in range(len(sequence))))}})
        play = [{"name": "velero", "hosts": "all", "connection": "local", "gather_facts": False, "strategy": "ansible.builtin.free",
                 "module_defaults": {"group/infra.k3s.velero": group_defaults}, "tasks": play_tasks}]
        playbook = self.tmp_path / ("play-%d.yml" % self.count)
        playbook.write_text(json.dumps(play, indent=1))
        inventory = self.tmp_path / ("hosts-%d.yml" % self.count)
        inventory.write_text(json.dumps({"all": {"hosts": dict(("h%d" % i, {}) for i in range(len(sequences)))}}))
        args = ["-i", str(inventory), "-f", str(max(5, len(sequences))), str(playbook)]
        if check:
            args.append("--check")
        if diff:
            args.append("--diff")
        if verbosity:
            args.append("-" + "v" * verbosity)
        extra = dict(ANSIBLE_PYTHON_INTERPRETER=sys.executable, KUBECONFIG=str(self.tmp_path / "no-default-kubeconfig"))
        extra.update(env or {})
        proc = self.run_ansible("ansible-playbook", *args, extra_env=extra)
        self.last = proc
        results = []
        for host, item in enumerate(items):
            saved = saved_results(proc, "h%d" % host)
            results.append(saved if isinstance(item, list) else saved[0])
        return results


def saved_results(proc, host):
    """The registered results the 'save results' task printed for one host."""
    marker = proc.stdout.find('"SAVED-%s ' % host)
    assert marker >= 0, proc.stdout + proc.stderr
    printed, unused = json.JSONDecoder().raw_decode(proc.stdout, marker)
    return json.loads(printed.split(" ", 1)[1])


@pytest.fixture
def play(run_ansible, tmp_path, k8s, cluster):
    inherited = [variable for variable in FALLBACK_VARIABLES if variable in os.environ]
    if inherited:
        pytest.skip("unset %s to run the Velero module tests (the modules would use them)" % ", ".join(inherited))
    return Runner(run_ansible, tmp_path, k8s, cluster)


def ok(result):
    assert not result.get("failed"), result
    return result


def failed(result, *fragments):
    assert result.get("failed"), result
    for fragment in fragments:
        assert fragment in result["msg"], result["msg"]
    return result


# ---------------------------------------------------------------------------------------
# velero_backup
# ---------------------------------------------------------------------------------------

def test_backup_create_wait_idempotent_and_check_mode(play, cluster):
    cluster.location()
    task = {"module": "velero_backup", "name": "apps-1", "included_namespaces": ["apps"], "excluded_namespaces": ["kube-system"],
            "label_selector": {"tier": "db"}, "ttl": "72h", "storage_location": "default", "snapshot_volumes": False,
            "default_volumes_to_fs_backup": True, "include_cluster_resources": False, "wait": True, "wait_timeout": 30}
    with FakeVelero(cluster):
        (checked, created, again, different), = play(
            [dict(task, check_mode=True, diff=True), task, dict(task, diff=True), dict(task, ttl="1h", included_namespaces=["other"])])
    assert ok(checked)["changed"] is True and checked["phase"] == ""
    assert checked["backup"]["spec"]["ttl"] == "72h0m0s" and checked["diff"]["before"] == {}
    assert ok(created)["changed"] is True and created["phase"] == "Completed" and created["warning_count"] == 1
    assert created["backup"]["metadata"]["uid"] != checked["backup"]["metadata"]["uid"]  # check mode created nothing
    spec = cluster.get("backups", "apps-1")["spec"]
    assert spec == {"includedNamespaces": ["apps"], "excludedNamespaces": ["kube-system"], "labelSelector": {"matchLabels": {"tier": "db"}},
                    "ttl": "72h0m0s", "storageLocation": "default", "snapshotVolumes": False, "defaultVolumesToFsBackup": True,
                    "includeClusterResources": False}
    assert ok(again)["changed"] is False and again["phase"] == "Completed" and "diff" not in again
    assert ok(different)["changed"] is False  # one-shot: never patched
    assert cluster.get("backups", "apps-1")["spec"]["ttl"] == "72h0m0s"
    assert [b["metadata"]["name"] for b in cluster.list("backups")] == ["apps-1"]


def test_backup_outcomes_fail_clearly(play, cluster):
    outcomes = {"partial": "PartiallyFailed", "partial-ok": "PartiallyFailed", "broken": "Failed", "invalid": "FailedValidation",
                "stuck": "never"}
    with FakeVelero(cluster, outcomes):
        results = play(*[{"module": "velero_backup", "name": name, "wait": True, "wait_timeout": 3 if name == "stuck" else 20,
                          "allow_partially_failed": name == "partial-ok"} for name in outcomes])
    partial, partial_ok, broken, invalid, stuck = results
    failed(partial, "PartiallyFailed with 2 error(s)", "allow_partially_failed")
    assert partial["phase"] == "PartiallyFailed" and partial["error_count"] == 2
    assert ok(partial_ok)["phase"] == "PartiallyFailed" and partial_ok["changed"] is True
    failed(broken, "failed: the bucket went away")
    assert broken["failure_reason"] == "the bucket went away"
    failed(invalid, "failed validation: an existing backup storage location was not specified")
    assert invalid["validation_errors"] == ["an existing backup storage location was not specified"]
    failed(stuck, "Timed out after 3s waiting for Backup %s/stuck" % cluster.ns, "phase InProgress")
    assert stuck["backup"]["status"]["phase"] == "InProgress" and stuck["phase"] == "InProgress"


def test_backup_absent_creates_delete_backup_request(play, cluster):
    cluster.create("backups", "old", {"ttl": "1h0m0s"}, status={"phase": "Completed", "startTimestamp": stamp(5)})
    cluster.create("backups", "stuck", {}, status={"phase": "Completed"})

    def velero():  # Velero processes the request for "stuck" but cannot delete its data
        for unused in range(200):
            for request in cluster.list("deletebackuprequests"):
                if request["spec"]["backupName"] == "stuck" and not (request.get("status") or {}).get("phase"):
                    cluster.set_status("deletebackuprequests", request["metadata"]["name"],
                                       {"phase": "Processed", "errors": ["error deleting backup: AccessDenied"]})
                    return
            time.sleep(0.1)

    thread = threading.Thread(target=velero, daemon=True)
    thread.start()
    absent = {"module": "velero_backup", "name": "old", "state": "absent"}
    (checked, first, second), gone, stuck = play(
        [dict(absent, check_mode=True), dict(absent, diff=True), absent],
        {"module": "velero_backup", "name": "never-was", "state": "absent"},
        {"module": "velero_backup", "name": "stuck", "state": "absent", "wait": True, "wait_timeout": 20})
    thread.join(5)
    assert ok(checked)["changed"] is True and checked["delete_request"]["spec"] == {"backupName": "old"}
    assert ok(first)["changed"] is True and first["diff"]["after"] == {}
    requests = [r for r in cluster.list("deletebackuprequests") if r["spec"]["backupName"] == "old"]
    assert len(requests) == 1, "check mode created a DeleteBackupRequest, or the second run another one"
    request = requests[0]
    assert request["metadata"]["name"].startswith("old-")
    assert request["metadata"]["labels"]["velero.io/backup-name"] == "old"
    assert request["metadata"]["labels"]["velero.io/backup-uid"] == cluster.get("backups", "old")["metadata"]["uid"]
    assert cluster.get("backups", "old") is not None, "the Backup object must be left for Velero to delete"
    assert ok(second)["changed"] is False, "a pending DeleteBackupRequest is enough"
    assert ok(gone)["changed"] is False and gone["backup"] is None
    failed(stuck, "could not delete backup", "AccessDenied")


# ---------------------------------------------------------------------------------------
# velero_restore
# ---------------------------------------------------------------------------------------

def test_restore_from_schedule_picks_latest_completed(play, cluster):
    cluster.location()
    label = {"velero.io/schedule-name": "nightly"}
    cluster.create("backups", "nightly-old", {}, labels=label, status={"phase": "Completed", "startTimestamp": stamp(120)})
    cluster.create("backups", "nightly-mid", {}, labels=label, status={"phase": "Completed", "startTimestamp": stamp(60)})
    cluster.create("backups", "nightly-new", {}, labels=label, status={"phase": "PartiallyFailed", "startTimestamp": stamp(1)})
    cluster.create("backups", "nightly-failed", {}, labels=label, status={"phase": "Failed", "startTimestamp": stamp(0)})
    cluster.create("backups", "other-newer", {}, labels={"velero.io/schedule-name": "hourly"},
                   status={"phase": "Completed", "startTimestamp": stamp(0)})
    with FakeVelero(cluster):
        strict, widened = play(
            {"module": "velero_restore", "name": "r-strict", "schedule_name": "nightly", "wait": True, "wait_timeout": 20,
             "included_namespaces": ["apps"], "namespace_mapping": {"apps": "apps-copy"}, "restore_pvs": True,
             "existing_resource_policy": "update"},
            {"module": "velero_restore", "schedule_name": "nightly", "allow_partially_failed": True})
    assert ok(strict)["backup_name"] == "nightly-mid" and strict["phase"] == "Completed"
    assert strict["backup"]["metadata"]["name"] == "nightly-mid"
    restore = cluster.get("restores", "r-strict")
    assert restore["spec"] == {"backupName": "nightly-mid", "includedNamespaces": ["apps"], "namespaceMapping": {"apps": "apps-copy"},
                               "restorePVs": True, "existingResourcePolicy": "update"}
    assert ok(widened)["backup_name"] == "nightly-new"
    name = widened["restore"]["metadata"]["name"]
    assert name.startswith("nightly-new-") and len(name) == len("nightly-new-") + 14
    assert cluster.get("restores", name)["spec"]["backupName"] == "nightly-new"
    assert any("PartiallyFailed" in warning for warning in widened.get("warnings", []))


def modifier_rules(configmap):
    """The resource modifier rules of a node-mapping ConfigMap (exactly one data key, as Velero requires)."""
    (text,) = configmap["data"].values()
    doc = yaml.safe_load(text)
    assert doc["version"] == "v1"
    return doc["resourceModifierRules"]


def selected_node(rule):
    (patch,) = rule["mergePatches"]
    return json.loads(patch["patchData"])["metadata"]["annotations"]["volume.kubernetes.io/selected-node"]


def test_restore_idempotent_by_name_check_mode_and_node_mapping(play, cluster):
    """Velero 1.18 reads no change-pvc-node-selector ConfigMap: node_mapping is a resource modifier ConfigMap per restore
    (one data key; a rule per original namespace with the claims' names) that the Restore names in spec.resourceModifier."""
    cluster.location()
    cluster.create("backups", "b1", {}, status={"phase": "Completed", "startTimestamp": stamp(5)})
    task = {"module": "velero_restore", "name": "r1", "backup_name": "b1", "node_mapping": {"worker1": "worker4", "worker2": "worker4"},
            "node_mapping_claims": ["apps/data-db-0", "apps/uploads", "wiki/data"]}
    (checked, first, again, second, two_targets), = play([
        dict(task, check_mode=True, diff=True), task, task,
        {"module": "velero_restore", "name": "r2", "backup_name": "b1", "included_namespaces": ["wiki"], "node_mapping": {"worker3": "worker6"}},
        {"module": "velero_restore", "name": "r3", "backup_name": "b1", "node_mapping": {"worker1": "worker4", "worker2": "worker5"}}])
    assert ok(checked)["changed"] is True and checked["restore"]["spec"]["backupName"] == "b1"
    cm_diff, restore_diff = checked["diff"]
    assert cm_diff["before"] == {} and list(cm_diff["after"]["data"]) == ["node-mapping.yaml"]
    assert cm_diff["after_header"] == "ConfigMap %s/r1-node-mapping (after)" % cluster.ns
    assert restore_diff["after"]["spec"] == {"backupName": "b1", "resourceModifier": {"kind": "ConfigMap", "name": "r1-node-mapping"}}
    assert ok(first)["changed"] is True and first["restore"]["metadata"]["uid"] != checked["restore"]["metadata"]["uid"]
    assert first["restore"]["spec"]["resourceModifier"] == {"kind": "ConfigMap", "name": "r1-node-mapping"}
    configmap = cluster.configmap("r1-node-mapping")
    assert configmap["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "infra.k3s"}
    rules = modifier_rules(configmap)
    assert [r["conditions"] for r in rules] == [
        {"groupResource": "persistentvolumeclaims", "namespaces": ["apps"], "resourceNameRegex": "^(data-db-0|uploads)$"},
        {"groupResource": "persistentvolumeclaims", "namespaces": ["wiki"], "resourceNameRegex": "^(data)$"}]
    assert [selected_node(r) for r in rules] == ["worker4", "worker4"]
    assert first["node_mapping_configmap"]["metadata"]["resourceVersion"] != checked["node_mapping_configmap"]["metadata"]["resourceVersion"]
    assert ok(again)["changed"] is False
    assert again["restore"]["metadata"]["uid"] == first["restore"]["metadata"]["uid"] and again["backup_name"] == "b1"
    assert ok(second)["changed"] is True
    (rule,) = modifier_rules(cluster.configmap("r2-node-mapping"))  # without claims: every claim the restore brings back
    assert rule["conditions"] == {"groupResource": "persistentvolumeclaims", "namespaces": ["wiki"]} and selected_node(rule) == "worker6"
    assert modifier_rules(cluster.configmap("r1-node-mapping")) == rules  # another restore's ConfigMap is left alone
    failed(two_targets, "node_mapping maps to worker4, worker5: Velero 1.18 removes each restored claim's node")
    assert cluster.configmap("r3-node-mapping") is None and cluster.get("restores", "r3") is None
    assert sorted(r["metadata"]["name"] for r in cluster.list("restores")) == ["r1", "r2"]


def test_restore_selectors_and_node_mapping_lifetime(play, cluster):
    cluster.location()
    cluster.create("backups", "b1", {}, status={"phase": "Completed", "startTimestamp": stamp(5)})
    mapping = {"worker1": "worker2"}
    with FakeVelero(cluster, {"r-failed": "Failed"}):
        (results,) = play([
            {"module": "velero_restore", "name": "r-or", "backup_name": "b1", "included_namespaces": ["wiki"],
             "or_label_selectors": [{"app.kubernetes.io/name": "wiki"}, {"app": "wiki"}],
             "included_resources": ["deployments.apps", "persistentvolumeclaims"], "excluded_resources": ["secrets"],
             "node_mapping": mapping, "wait": True, "wait_timeout": 20},
            {"module": "velero_restore", "name": "r-or", "backup_name": "b1", "node_mapping": mapping, "wait": True, "wait_timeout": 20},
            {"module": "velero_restore", "name": "r-failed", "backup_name": "b1", "label_selector": {"tier": 1},
             "node_mapping": mapping, "wait": True, "wait_timeout": 20},
            {"module": "velero_restore", "name": "r-keep", "backup_name": "b1", "node_mapping": mapping, "keep_node_mapping": True,
             "wait": True, "wait_timeout": 20},
            {"module": "velero_restore", "name": "r-plain-check", "backup_name": "b1", "node_mapping": {}, "check_mode": True,
             "diff": True},
            {"module": "velero_restore", "name": "r-plain", "backup_name": "b1", "node_mapping": {}},
            {"module": "velero_restore", "name": "r-both", "backup_name": "b1", "label_selector": {"a": "b"},
             "or_label_selectors": [{"a": "c"}]},
        ])
    selected, again, broken, kept, plain_check, plain, both = results
    restore = cluster.get("restores", "r-or")
    assert restore["spec"] == {"backupName": "b1", "includedNamespaces": ["wiki"], "includedResources": ["deployments.apps", "persistentvolumeclaims"],
                               "excludedResources": ["secrets"],
                               "orLabelSelectors": [{"matchLabels": {"app.kubernetes.io/name": "wiki"}}, {"matchLabels": {"app": "wiki"}}],
                               "resourceModifier": {"kind": "ConfigMap", "name": "r-or-node-mapping"}}
    # Written for the restore, deleted once it finished; a rerun finds nothing to do.
    assert ok(selected)["changed"] is True and selected["node_mapping_removed"] is True
    (rule,) = modifier_rules(selected["node_mapping_configmap"])
    assert rule["conditions"] == {"groupResource": "persistentvolumeclaims", "namespaces": ["wiki"]} and selected_node(rule) == "worker2"
    assert cluster.configmap("r-or-node-mapping") is None
    assert ok(again)["changed"] is False and again["node_mapping_removed"] is False
    # Removed after a failed restore too, and the label selector's value is sent as a string.
    failed(broken, "Restore %s/r-failed failed" % cluster.ns)
    assert broken["node_mapping_removed"] is True and cluster.configmap("r-failed-node-mapping") is None
    assert cluster.get("restores", "r-failed")["spec"]["labelSelector"] == {"matchLabels": {"tier": "1"}}
    # keep_node_mapping leaves it; node_mapping {} writes none and the restore names none.
    assert ok(kept)["phase"] == "Completed" and "node_mapping_removed" not in kept
    assert modifier_rules(cluster.configmap("r-keep-node-mapping"))[0]["conditions"] == {"groupResource": "persistentvolumeclaims"}
    assert ok(plain_check)["changed"] is True and plain_check["diff"]["after_header"] == "Restore %s/r-plain-check (after)" % cluster.ns
    assert ok(plain)["changed"] is True and "node_mapping_configmap" not in plain
    assert "resourceModifier" not in cluster.get("restores", "r-plain")["spec"]
    failed(both, "mutually exclusive: label_selector|or_label_selectors")
    assert cluster.get("restores", "r-both") is None


def test_restore_refusals_and_outcomes(play, cluster):
    cluster.location("default", phase="Unavailable")
    cluster.location("good", phase="Available", default=False)
    cluster.create("backups", "on-bad", {"storageLocation": "default"}, status={"phase": "Completed", "startTimestamp": stamp(5)})
    cluster.create("backups", "on-good", {"storageLocation": "good"}, status={"phase": "Completed", "startTimestamp": stamp(5)})
    cluster.create("backups", "running", {"storageLocation": "good"}, status={"phase": "InProgress"})
    with FakeVelero(cluster, {"r-partial": "PartiallyFailed", "r-failed": "Failed", "r-invalid": "FailedValidation",
                              "r-partial-ok": "PartiallyFailed"}):
        results = play(
            [{"module": "velero_restore", "backup_name": "on-bad"}, {"module": "velero_restore", "backup_name": "missing"}],
            [{"module": "velero_restore", "backup_name": "running"}, {"module": "velero_restore", "schedule_name": "nobody"},
             {"module": "velero_restore", "name": "ghost"}],
            {"module": "velero_restore", "name": "r-partial", "backup_name": "on-good", "wait": True, "wait_timeout": 20},
            {"module": "velero_restore", "name": "r-partial-ok", "backup_name": "on-good", "wait": True, "wait_timeout": 20,
             "allow_partially_failed": True},
            {"module": "velero_restore", "name": "r-failed", "backup_name": "on-good", "wait": True, "wait_timeout": 20},
            {"module": "velero_restore", "name": "r-invalid", "backup_name": "on-good", "wait": True, "wait_timeout": 20},
        )
    (bad_location, missing), (running, nobody, ghost), partial, partial_ok, broken, invalid = results
    failed(ghost, "Restore %s/ghost does not exist: give backup_name or schedule_name" % cluster.ns)
    failed(bad_location, "BackupStorageLocation %s/default is Unavailable" % cluster.ns, "no restore was started")
    failed(missing, "Backup %s/missing does not exist" % cluster.ns)
    failed(running, "is InProgress")
    failed(nobody, "Schedule %s/nobody has no Completed backup" % cluster.ns)
    assert sorted(r["metadata"]["name"] for r in cluster.list("restores")) == ["r-failed", "r-invalid", "r-partial", "r-partial-ok"]
    failed(partial, "Restore %s/r-partial finished PartiallyFailed" % cluster.ns)
    assert partial["backup_name"] == "on-good"
    assert ok(partial_ok)["phase"] == "PartiallyFailed"
    failed(broken, "failed: the bucket went away")
    failed(invalid, "failed validation")


# ---------------------------------------------------------------------------------------
# velero_schedule
# ---------------------------------------------------------------------------------------

def test_schedule_create_noop_patch_diff_check_absent(play, cluster):
    task = {"module": "velero_schedule", "name": "nightly", "schedule": "0 2 * * *", "ttl": "168h", "included_namespaces": ["apps"],
            "default_volumes_to_fs_backup": True}
    (checked, created, again), bad = play([dict(task, check_mode=True, diff=True), task, dict(task, diff=True)],
                                          {"module": "velero_schedule", "name": "bad", "schedule": "0 2 * * *", "ttl": "a week"})
    assert ok(checked)["changed"] is True and checked["diff"]["before"] == {}
    assert checked["diff"]["after"]["spec"]["template"]["ttl"] == "168h0m0s"
    assert ok(created)["changed"] is True and created["schedule"]["metadata"]["uid"] != checked["schedule"]["metadata"]["uid"]
    assert ok(again)["changed"] is False and "diff" not in again
    failed(bad, "'a week' is not a duration")
    assert cluster.get("schedules", "bad") is None
    current = cluster.get("schedules", "nightly")
    assert current["spec"] == {"schedule": "0 2 * * *", "paused": False,
                               "template": {"includedNamespaces": ["apps"], "ttl": "168h0m0s", "defaultVolumesToFsBackup": True}}
    # hooks set by someone else stay; a ttl written as 168h counts as equal
    cluster.custom.patch_namespaced_custom_object(GROUP, VERSION, cluster.ns, "schedules", "nightly",
                                                  {"spec": {"template": {"ttl": "168h", "hooks": {"resources": []}}}},
                                                  _content_type="application/merge-patch+json")
    changed_task = dict(task, schedule="0 3 * * *", paused=True, excluded_namespaces=["kube-system"])
    changed_task.pop("included_namespaces")
    absent = {"module": "velero_schedule", "name": "nightly", "state": "absent"}
    (check_patch, patched, noop, removed, removed_again), = play(
        [dict(changed_task, check_mode=True, diff=True), changed_task, changed_task, dict(absent, diff=True), absent])
    assert ok(check_patch)["changed"] is True
    assert check_patch["diff"]["before"]["spec"]["schedule"] == "0 2 * * *"
    assert check_patch["diff"]["after"]["spec"]["schedule"] == "0 3 * * *"
    assert "includedNamespaces" not in check_patch["diff"]["after"]["spec"]["template"]
    assert check_patch["schedule"]["spec"]["schedule"] == "0 3 * * *"  # the API's dry-run answer
    assert ok(patched)["changed"] is True and ok(noop)["changed"] is False
    assert patched["schedule"]["spec"] == {"schedule": "0 3 * * *", "paused": True,
                                           "template": {"excludedNamespaces": ["kube-system"], "ttl": "168h",
                                                        "defaultVolumesToFsBackup": True, "hooks": {"resources": []}}}
    assert ok(removed)["changed"] is True and removed["diff"]["before"]["spec"]["schedule"] == "0 3 * * *"
    assert ok(removed_again)["changed"] is False
    assert cluster.get("schedules", "nightly") is None


# ---------------------------------------------------------------------------------------
# velero_storage_location
# ---------------------------------------------------------------------------------------

R2_CONFIG = {"region": "auto", "s3ForcePathStyle": "true", "s3Url": "https://0123abcd.r2.cloudflarestorage.com", "checksumAlgorithm": ""}


def test_storage_location_r2_declarative_and_wait(play, cluster):
    def velero():
        for unused in range(300):
            for name, phase in (("good", "Available"), ("bad", "Unavailable")):
                obj = cluster.get("backupstoragelocations", name)
                if obj is not None and not (obj.get("status") or {}).get("phase"):
                    cluster.set_status("backupstoragelocations", name,
                                       {"phase": phase, "message": "" if phase == "Available" else "NoSuchBucket: the bucket does not exist"})
            time.sleep(0.1)

    thread = threading.Thread(target=velero, daemon=True)
    thread.start()
    task = {"module": "velero_storage_location", "name": "default", "bucket": "k3s-backups", "prefix": "/prod/",
            "r2_account_id": "0123abcd", "credential": {"name": "cloud-credentials", "key": "cloud"}, "default": True}
    moved = dict(task, s3_url="https://0123abcd.eu.r2.cloudflarestorage.com", config={"checksumAlgorithm": False, "profile": "r2"})
    moved.pop("credential")
    (checked, created, again, patched), good, bad, wrong = play(
        [dict(task, check_mode=True, diff=True), task, task, dict(moved, diff=True)],
        {"module": "velero_storage_location", "name": "good", "bucket": "b", "wait": True, "wait_timeout": 20},
        {"module": "velero_storage_location", "name": "bad", "bucket": "b", "wait": True, "wait_timeout": 3},
        dict(task, name="gcp", provider="gcp"))
    assert ok(checked)["changed"] is True and checked["diff"]["after"]["spec"]["config"] == R2_CONFIG
    assert ok(created)["changed"] is True and ok(again)["changed"] is False
    assert created["storage_location"]["metadata"]["uid"] != checked["storage_location"]["metadata"]["uid"]
    assert created["storage_location"]["spec"] == {
        "provider": "aws", "objectStorage": {"bucket": "k3s-backups", "prefix": "prod"}, "default": True, "accessMode": "ReadWrite",
        "credential": {"name": "cloud-credentials", "key": "cloud"}, "config": R2_CONFIG}
    assert ok(patched)["changed"] is True
    assert patched["diff"]["before"]["spec"]["config"]["s3Url"] == "https://0123abcd.r2.cloudflarestorage.com"
    assert patched["diff"]["after"]["spec"]["config"]["s3Url"] == "https://0123abcd.eu.r2.cloudflarestorage.com"
    spec = cluster.get("backupstoragelocations", "default")["spec"]
    assert "credential" not in spec
    assert spec["config"] == {"region": "auto", "s3ForcePathStyle": "true", "s3Url": "https://0123abcd.eu.r2.cloudflarestorage.com",
                              "checksumAlgorithm": "false", "profile": "r2"}
    assert ok(good)["phase"] == "Available" and good["changed"] is True
    failed(bad, "BackupStorageLocation %s/bad is not Available after 3s: Unavailable (NoSuchBucket" % cluster.ns)
    assert bad["storage_location"]["status"]["phase"] == "Unavailable"
    failed(wrong, "r2_account_id needs provider aws")
    assert cluster.get("backupstoragelocations", "gcp") is None


# ---------------------------------------------------------------------------------------
# Faults: 409 Conflict, AlreadyExists, 5xx (through FaultProxy, with host + api_key); connection; no_log
# ---------------------------------------------------------------------------------------

def test_conflicts_and_server_errors(play, cluster, proxy, k8s):
    via_proxy = {"host": proxy.url, "api_key": k8s.token}
    cluster.create("schedules", "s1", {"schedule": "0 1 * * *", "template": {}})
    # The first PATCH meets 409 Conflict: the module reads again and patches again.
    proxy.add(method="PATCH", path_endswith="/schedules/s1", status=409, reason="Conflict", count=1)
    # The Backup is created but its answer is replaced by AlreadyExists (as if another run won the race).
    proxy.add(method="POST", path_endswith="/backups", status=409, reason="AlreadyExists", count=1, forward=True)
    # A schedule that always conflicts fails after 3 attempts.
    cluster.create("schedules", "s2", {"schedule": "0 1 * * *", "template": {}})
    proxy.add(method="PATCH", path_endswith="/schedules/s2", status=409, reason="Conflict", count=10)
    # 5xx on the create of a BackupStorageLocation
    proxy.add(method="POST", path_endswith="/backupstoragelocations", status=503, reason="ServiceUnavailable", count=10,
              message="etcdserver: leader changed")
    patched, raced, conflicted, unavailable = play(
        {"module": "velero_schedule", "name": "s1", "schedule": "0 4 * * *"},
        {"module": "velero_backup", "name": "raced"},
        {"module": "velero_schedule", "name": "s2", "schedule": "0 4 * * *"},
        {"module": "velero_storage_location", "name": "default", "bucket": "b"},
        defaults=via_proxy)
    assert ok(patched)["changed"] is True, (patched, proxy.log)
    assert cluster.get("schedules", "s1")["spec"]["schedule"] == "0 4 * * *"
    assert [entry[2] for entry in proxy.log if "/schedules/s1" in entry[1] and entry[0] == "PATCH"] == [409, 200]
    assert ok(raced)["changed"] is False and raced["backup"]["metadata"]["name"] == "raced"
    failed(conflicted, "kept changing while it was being updated (409 Conflict 3 times)")
    failed(unavailable, "HTTP 503 (ServiceUnavailable) while creating BackupStorageLocation", "etcdserver: leader changed",
           "try again later")
    assert unavailable["status"] == 503
    assert cluster.get("backupstoragelocations", "default") is None


def test_connection_errors_and_no_log(play, cluster, k8s, tmp_path):
    token_task = {"module": "velero_backup_info", "host": k8s.url, "api_key": k8s.token, "ca_cert": k8s.ca_path, "kubeconfig": None}
    # kubernetes.core's kubeconfig option also takes the kubeconfig itself: its token and CA stay out of -vvv output
    inline = {"apiVersion": "v1", "kind": "Config", "current-context": "lab",
              "clusters": [{"name": "lab", "cluster": {"server": k8s.url, "certificate-authority-data": base64.b64encode(
                  Path(k8s.ca_path).read_bytes()).decode()}}],
              "users": [{"name": "admin", "user": {"token": k8s.token}}],
              "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "admin"}}]}
    refused, no_file, with_token, insecure, with_dict, basic = play(
        {"module": "velero_backup_info", "host": "http://127.0.0.1:9", "api_key": "not-a-real-token", "kubeconfig": None},
        {"module": "velero_backup_info", "kubeconfig": str(tmp_path / "nope.yaml")},
        token_task,
        dict(token_task, ca_cert=None, validate_certs=False),
        {"module": "velero_backup_info", "kubeconfig": inline},
        dict(token_task, api_key=None, username="admin", password="not-a-real-password"),
        verbosity=3)
    failed(refused, "Could not reach the Kubernetes API while listing Backups")
    failed(no_file, "kubeconfig file %s does not exist" % (tmp_path / "nope.yaml"))
    assert ok(with_token)["backups"] == [] and ok(insecure)["backups"] == [] and ok(with_dict)["backups"] == []
    failed(basic, "username and password (HTTP Basic authentication) are not supported")
    output = play.last.stdout + play.last.stderr
    assert "ESTABLISH LOCAL CONNECTION" in output
    assert k8s.token not in output and "not-a-real-token" not in output and "not-a-real-password" not in output
    assert inline["clusters"][0]["cluster"]["certificate-authority-data"] not in output


# ---------------------------------------------------------------------------------------
# velero_backup_info
# ---------------------------------------------------------------------------------------

def test_backup_info_filters(play, cluster):
    label = {"velero.io/schedule-name": "nightly"}
    cluster.create("backups", "n1", {"includedNamespaces": ["apps"]}, labels=label, status={"phase": "Completed", "startTimestamp": stamp(30)})
    cluster.create("backups", "n2", {"includedNamespaces": ["*"], "excludedNamespaces": ["apps"]}, labels=label,
                   status={"phase": "Completed", "startTimestamp": stamp(20)})
    cluster.create("backups", "n3", {}, labels=label, status={"phase": "PartiallyFailed", "startTimestamp": stamp(10)})
    cluster.create("backups", "manual", {"includedNamespaces": ["db"]}, status={"phase": "Failed", "startTimestamp": stamp(5)})
    everything, nightly, latest, latest_any, apps, failed_ones, one = play(
        {"module": "velero_backup_info"},
        {"module": "velero_backup_info", "schedule": "nightly"},
        {"module": "velero_backup_info", "schedule": "nightly", "latest": True},
        {"module": "velero_backup_info", "schedule": "nightly", "latest": True, "phase": ["Completed", "PartiallyFailed"]},
        {"module": "velero_backup_info", "included_namespace": "apps"},
        {"module": "velero_backup_info", "phase": ["Failed"]},
        {"module": "velero_backup_info", "name": "n1"},
        check=True)

    def names(result):
        return [b["name"] for b in ok(result)["backups"]]

    assert names(everything) == ["manual", "n3", "n2", "n1"] and everything["changed"] is False
    assert names(nightly) == ["n3", "n2", "n1"]
    assert names(latest) == ["n2"]
    assert names(latest_any) == ["n3"]
    assert names(apps) == ["n3", "n1"]
    assert names(failed_ones) == ["manual"]
    assert names(one) == ["n1"] and one["backups"][0]["schedule"] == "nightly" and one["backups"][0]["included_namespaces"] == ["apps"]


@pytest.fixture(scope="module")
def s3server():
    from standins.velero import s3  # pylint: disable=import-outside-toplevel
    server = s3.start_s3_server()
    yield server
    server.stop()


def test_backup_info_verify_storage_with_moto(play, cluster, s3server):
    bucket = s3server.create_bucket("verify-%s" % cluster.ns)
    s3client = s3server.client()
    cluster.create("backupstoragelocations", "default", {"provider": "aws", "default": True,
                                                         "objectStorage": {"bucket": bucket, "prefix": "k3s"},
                                                         "config": {"region": "us-east-1", "s3ForcePathStyle": "true",
                                                                    "s3Url": "http://127.0.0.1:1"}})
    for name in ("whole", "half"):
        cluster.create("backups", name, {"storageLocation": "default"}, status={"phase": "Completed", "startTimestamp": stamp(5)})
        s3client.put_object(Bucket=bucket, Key="k3s/backups/%s/velero-backup.json" % name, Body=b"{}")
    s3client.put_object(Bucket=bucket, Key="k3s/backups/whole/whole.tar.gz", Body=b"tar")
    cluster.core.create_namespaced_secret(cluster.ns, s3server.credentials_secret(namespace=cluster.ns))
    with_options, from_secret, wrong_key = play(
        {"module": "velero_backup_info", "verify_storage": True, "s3_url": s3server.url,
         "aws_access_key_id": s3server.access_key, "aws_secret_access_key": s3server.secret_key},
        {"module": "velero_backup_info", "verify_storage": True, "s3_url": s3server.url, "name": "whole"},
        {"module": "velero_backup_info", "verify_storage": True, "name": "whole"})
    by_name = dict((b["name"], b) for b in ok(with_options)["backups"])
    assert by_name["whole"]["storage_verified"] is True and by_name["whole"]["missing_keys"] == []
    assert by_name["half"]["storage_verified"] is False
    assert by_name["half"]["missing_keys"] == ["k3s/backups/half/half.tar.gz"]
    assert with_options["all_verified"] is False
    assert by_name["whole"]["storage"] == {"bucket": bucket, "endpoint": s3server.url, "storage_location": "default"}
    assert ok(from_secret)["backups"][0]["storage_verified"] is True and from_secret["all_verified"] is True
    failed(wrong_key, "Could not reach object storage", "http://127.0.0.1:1")


# ---------------------------------------------------------------------------------------
# End to end with the stand-in Velero controller (tests/standins/velero)
# ---------------------------------------------------------------------------------------

@pytest.mark.skipif(not HAS_CONTROLLER, reason="tests/standins/velero/controller.py is not there yet")
def test_end_to_end_with_standin_controller(play, cluster, s3server, k8s):
    from standins.velero import controller  # pylint: disable=import-outside-toplevel
    bucket = s3server.create_bucket("e2e-%s" % cluster.ns)
    cluster.core.create_namespaced_secret(cluster.ns, s3server.credentials_secret(namespace=cluster.ns))
    cluster.core.create_namespaced_config_map(cluster.ns, {"metadata": {"name": "velero-standin"}, "data": {"in-progress-seconds": "0.5"}})
    running = controller.start_controller(kubeconfig_path=k8s.kubeconfig_path, namespace=cluster.ns, interval=0.2)
    try:
        location = {"module": "velero_storage_location", "name": "default", "bucket": bucket, "prefix": "k3s", "s3_url": s3server.url,
                    "config": {"region": "us-east-1", "s3ForcePathStyle": True}, "default": True, "wait": True, "wait_timeout": 30}
        (bsl, backup, info, restore, deleted, after), = play([
            location,
            {"module": "velero_backup", "name": "e2e-1", "included_namespaces": [cluster.ns], "wait": True, "wait_timeout": 60},
            {"module": "velero_backup_info", "name": "e2e-1", "verify_storage": True},
            {"module": "velero_restore", "name": "e2e-r1", "backup_name": "e2e-1", "node_mapping": {"old-node": "new-node"},
             "existing_resource_policy": "update", "wait": True, "wait_timeout": 60},
            {"module": "velero_backup", "name": "e2e-1", "state": "absent", "wait": True, "wait_timeout": 60},
            {"module": "velero_backup_info", "name": "e2e-1"},
        ])
        assert ok(bsl)["phase"] == "Available" and bsl["changed"] is True
        assert ok(backup)["phase"] == "Completed" and backup["backup"]["status"]["progress"]["totalItems"] > 0
        assert ok(info)["backups"][0]["storage_verified"] is True, info
        assert info["backups"][0]["missing_keys"] == []
        assert ok(restore)["phase"] == "Completed" and restore["backup_name"] == "e2e-1"
        assert ok(deleted)["changed"] is True
        assert ok(after)["backups"] == []
        assert running.errors == []
        keys = [obj["Key"] for obj in s3server.client().list_objects_v2(Bucket=bucket, Prefix="k3s/backups/e2e-1/").get("Contents", [])]
        assert keys == [], "the backup's data must be gone"
    finally:
        running.stop()
