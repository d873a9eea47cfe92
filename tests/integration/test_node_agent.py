"""The infra.k3s.node_agent role against the stand-in K3s server on loopback, and the stand-in's
deploy controller (server/manifests) and helm-controller (the velero chart's effects).

The role runs with ansible_connection=local; its paths (k3s binary, kubeconfig, manifest) are its
ordinary variables pointed into the test's directory.
"""
from __future__ import annotations

import base64
import json
import os
import stat
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/
from support.k3s_process import K3s  # noqa: E402
from support.play import run_play  # noqa: E402
from support.poll import wait_for  # noqa: E402
from standins.k3s import apiserver, helm, manifests, yamlish  # noqa: E402
from support.recap import localhost_recap  # noqa: E402

ACCOUNT = "0123456789abcdef0123456789abcdef"
KEY_ID = "R2KEYIDnodeagent0123456789abcdef"
SECRET = "R2SECRETnodeagent+/0123456789abcdefghijklmnopqrstuv"


def role_vars(k3s_server: K3s, **extra) -> dict:
    base = {"node_agent_r2_account_id": ACCOUNT, "node_agent_bucket": "velero-backups", "node_agent_prefix": "lab",
            "node_agent_access_key_id": KEY_ID, "node_agent_secret_access_key": SECRET,
            "node_agent_k3s_bin": str(k3s_server.bin), "node_agent_kubeconfig": str(k3s_server.kubeconfig),
            "node_agent_manifest_path": str(k3s_server.manifests / "infra-k3s-velero.yaml"),
            "node_agent_wait_timeout": 60, "node_agent_wait_delay": 1}
    base.update(extra)
    return base


@pytest.fixture
def converge(run_ansible, tmp_path):
    """Run the role on localhost (connection local); the variables go in a file, not on the command line."""
    play = {"name": "node agent", "hosts": "localhost", "connection": "local", "gather_facts": False,
            "roles": [{"role": "infra.k3s.node_agent"}]}

    def _run(variables: dict, check=False, verbosity=0):
        return run_play(run_ansible, tmp_path, play, variables, "localhost,", check=check, verbosity=verbosity)

    return _run


recap = localhost_recap


def assert_no_keys(proc):
    output = proc.stdout + proc.stderr
    for secret in (KEY_ID, SECRET, base64.b64encode(SECRET.encode()).decode()):
        assert secret not in output


# --- the role -------------------------------------------------------------------------------------

def test_check_mode_on_a_fresh_host(converge, tmp_path):
    """No K3s installed yet: check mode passes and changes nothing."""
    fresh = tmp_path / "fresh"
    variables = {"node_agent_r2_account_id": ACCOUNT, "node_agent_bucket": "velero-backups",
                 "node_agent_access_key_id": KEY_ID, "node_agent_secret_access_key": SECRET,
                 "node_agent_k3s_bin": str(fresh / "k3s"), "node_agent_kubeconfig": str(fresh / "k3s.yaml"),
                 "node_agent_manifest_path": str(fresh / "manifests" / "infra-k3s-velero.yaml")}
    proc = converge(variables, check=True, verbosity=3)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert recap(proc)["failed"] == 0
    assert not fresh.exists()
    assert_no_keys(proc)

    proc = converge(variables)  # for real, K3s missing: a clear failure before any change
    assert proc.returncode != 0 and "run infra.k3s.k3s_server on this host first" in proc.stdout
    assert not fresh.exists()


def test_check_mode_against_a_fresh_server(converge, k3s):
    proc = converge(role_vars(k3s), check=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (k3s.manifests / "infra-k3s-velero.yaml").exists()
    assert k3s.get("secret", "-n", "velero", "cloud-credentials") is None
    assert_no_keys(proc)


def test_install_then_idempotent(converge, k3s):
    proc = converge(role_vars(k3s), verbosity=3)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    assert recap(proc)["changed"] == 2  # the Secret (with its namespace) and the manifest
    assert_no_keys(proc)

    manifest = k3s.manifests / "infra-k3s-velero.yaml"
    assert stat.S_IMODE(manifest.stat().st_mode) == 0o600
    text = manifest.read_text(encoding="utf-8")
    assert KEY_ID not in text and SECRET not in text and base64.b64encode(SECRET.encode()).decode() not in text
    chart = yamlish.load(text)
    assert chart["apiVersion"] == "helm.cattle.io/v1" and chart["kind"] == "HelmChart"
    assert chart["spec"]["repo"] == "https://vmware-tanzu.github.io/helm-charts" and chart["spec"]["version"] == "12.1.0"
    values = yamlish.load(chart["spec"]["valuesContent"])
    assert values["deployNodeAgent"] is True and values["snapshotsEnabled"] is False
    assert values["initContainers"][0]["image"] == "velero/velero-plugin-for-aws:v1.14.3"
    assert values["image"] == {"repository": "velero/velero", "tag": "v1.18.1", "digest": ""}
    assert values["configuration"]["uploaderType"] == "kopia"
    assert values["credentials"] == {"existingSecret": "cloud-credentials", "useSecret": True}
    bsl = values["configuration"]["backupStorageLocation"][0]
    assert bsl["config"] == {"region": "auto", "s3ForcePathStyle": "true", "checksumAlgorithm": "",
                             "s3Url": "https://%s.r2.cloudflarestorage.com" % ACCOUNT}
    assert values["schedules"]["critical"]["schedule"] == "0 * * * *"
    assert values["schedules"]["standard"]["template"]["ttl"] == "720h0m0s"

    secret = k3s.get("secret", "-n", "velero", "cloud-credentials")
    cloud = base64.b64decode(secret["data"]["cloud"]).decode()
    assert cloud == "[default]\naws_access_key_id=%s\naws_secret_access_key=%s\n" % (KEY_ID, SECRET)

    # what K3s's deploy controller and helm-controller made of it
    helmchart = k3s.get("helmchart", "-n", "kube-system", "velero")
    # the real helm installed the real chart with the role's values: nothing refused by the chart or a CRD
    assert {c["type"]: c["status"] for c in helmchart["status"]["conditions"]} == {"JobCreated": "True", "Failed": "False"}, \
        helmchart["status"]
    assert helmchart["metadata"]["annotations"]["objectset.rio.cattle.io/owner-name"] == "infra-k3s-velero"
    assert k3s.get("addons.k3s.cattle.io", "-n", "kube-system", "infra-k3s-velero")["spec"]["source"] == str(manifest)
    deploy = k3s.get("deployment", "-n", "velero", "velero")
    assert deploy["spec"]["template"]["spec"]["initContainers"][0]["image"] == "velero/velero-plugin-for-aws:v1.14.3"
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "velero/velero:v1.18.1"
    assert k3s.get("daemonset", "-n", "velero", "node-agent")["status"]["numberReady"] >= 1
    location = k3s.get("backupstoragelocations.velero.io", "-n", "velero", "default")
    assert location["status"]["phase"] == "Available"
    assert location["spec"]["objectStorage"] == {"bucket": "velero-backups", "prefix": "lab"}
    schedules = {s["metadata"]["name"]: s for s in k3s.get("schedules.velero.io", "-n", "velero")["items"]}
    assert sorted(schedules) == ["velero-critical", "velero-standard"]
    assert schedules["velero-critical"]["spec"]["template"]["labelSelector"] == {"matchLabels": {"backup.infra.k3s/tier": "critical"}}
    assert schedules["velero-standard"]["spec"]["template"]["labelSelector"]["matchExpressions"][0]["operator"] == "NotIn"

    again = converge(role_vars(k3s), verbosity=3)
    assert again.returncode == 0, again.stdout[-4000:]
    assert recap(again)["changed"] == 0
    assert_no_keys(again)

    check = converge(role_vars(k3s), check=True)
    assert check.returncode == 0 and recap(check)["changed"] == 0


def test_new_keys_and_values_are_applied(converge, k3s):
    new_secret = SECRET[::-1]
    variables = role_vars(k3s, node_agent_secret_access_key=new_secret, node_agent_schedules=[
        {"name": "critical", "schedule": "*/30 * * * *", "ttl": "72h0m0s", "label_selector": {"matchLabels": {"backup.infra.k3s/tier": "critical"}}}])
    proc = converge(variables)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert recap(proc)["changed"] == 2
    cloud = base64.b64decode(k3s.get("secret", "-n", "velero", "cloud-credentials")["data"]["cloud"]).decode()
    assert new_secret in cloud and new_secret not in proc.stdout
    wait_for(lambda: sorted(s["metadata"]["name"] for s in k3s.get("schedules.velero.io", "-n", "velero")["items"]) == ["velero-critical"],
             what="the standard schedule to go")
    assert k3s.get("schedules.velero.io", "-n", "velero", "velero-critical")["spec"]["schedule"] == "*/30 * * * *"
    proc = converge(role_vars(k3s))
    assert proc.returncode == 0 and recap(proc)["changed"] == 2


@pytest.mark.parametrize("values,words", [
    # the real chart's values.schema.json: deployNodeAgent is a boolean
    ({"deployNodeAgent": "yes"}, ["deployNodeAgent", "boolean"]),
    # the chart renders it, Velero's real CRD (from the chart's crds/) refuses the Schedule. The role does not see
    # it yet: helm created the Deployment before the Schedule, so Velero comes up while the install failed; the
    # role waits for the Deployment and the BSL, not for K3s's helm-install-velero Job (a gap this test found).
    pytest.param({"schedules": {"critical": {"template": {"ttl": 5}}}},
                 ['Schedule.velero.io "velero-critical" is invalid', "spec.template.ttl"],
                 marks=pytest.mark.xfail(strict=True, reason="node_agent does not yet judge K3s's helm-install Job")),
], ids=["chart-schema", "velero-crd"])
def test_values_the_real_chart_rejects_fail_the_role(converge, tmp_path, values, words):
    """node_agent_values are the user's: what the real chart or Velero's CRD refuses is never installed, the role
    fails (no Velero comes up), and K3s's HelmChart carries helm's words (in the stand-in at once; a real K3s
    says it in the helm-install-velero Job's log, and as Failed=True once the Job's retries are spent)."""
    (tmp_path / "k3s").mkdir()
    server = K3s(tmp_path / "k3s")  # a fresh server: the chart's first install, nothing old to mistake for it
    try:
        proc = converge(role_vars(server, node_agent_values=values, node_agent_wait_timeout=6))
        chart = server.get("helmchart", "-n", "kube-system", "velero")
    finally:
        server.stop()
    assert proc.returncode != 0 and "Velero's Deployment velero/velero was not available" in proc.stdout, proc.stdout[-3000:]
    failed = {c["type"]: c for c in chart["status"]["conditions"]}["Failed"]
    assert failed["status"] == "True", chart["status"]
    for word in words:
        assert word in failed["message"], failed["message"]
    assert_no_keys(proc)


@pytest.mark.parametrize("override,message", [
    ({"node_agent_r2_account_id": "", "node_agent_s3_url": ""}, "Set node_agent_r2_account_id"),
    ({"node_agent_bucket": "Not_A_Bucket"}, "node_agent_bucket (3 to 63"),
    # R2 takes no dots (S3 does), and no more than 63 characters
    ({"node_agent_bucket": "velero.backups"}, "is not a name R2 takes"),
    ({"node_agent_bucket": "velero.backups", "node_agent_r2_account_id": "",
      "node_agent_s3_url": "https://%s.eu.r2.cloudflarestorage.com" % ACCOUNT}, "is not a name R2 takes"),
    ({"node_agent_bucket": "v" * 64}, "node_agent_bucket (3 to 63"),
    # another S3 store keeps S3's rule: the role goes on to its next check
    ({"node_agent_bucket": "velero.backups", "node_agent_s3_url": "http://minio.example:9000"}, "run infra.k3s.k3s_server"),
    ({"node_agent_aws_plugin_image": "velero/velero-plugin-for-aws:v1.14.1"}, "break R2"),
    ({"node_agent_chart_version": "latest"}, "must be a version"),
    # chart 12's CRD-upgrade hook runs `velero install --crds-only --apply` (Velero 1.18+)
    ({"node_agent_velero_image": "velero/velero:v1.17.1"}, "needs Velero 1.18 or later"),
    ({"node_agent_secret_access_key": ""}, "must be set"),
], ids=["no-endpoint", "bucket", "bucket-dots-r2", "bucket-dots-r2-eu", "bucket-64", "bucket-dots-s3", "plugin-1.14.1",
        "chart-unpinned", "chart-12-velero-1.17", "no-secret"])
def test_bad_input_fails_before_any_change(converge, tmp_path, override, message):
    target = tmp_path / "manifests" / "infra-k3s-velero.yaml"
    variables = {"node_agent_r2_account_id": ACCOUNT, "node_agent_bucket": "velero-backups",
                 "node_agent_access_key_id": KEY_ID, "node_agent_secret_access_key": SECRET,
                 "node_agent_k3s_bin": str(tmp_path / "k3s"), "node_agent_manifest_path": str(target)}
    variables.update(override)
    proc = converge(variables)
    assert proc.returncode != 0 and message in proc.stdout, proc.stdout[-3000:]
    assert not target.parent.exists()
    assert_no_keys(proc)


def test_missing_required_input_is_named(converge, tmp_path):
    proc = converge({"node_agent_r2_account_id": ACCOUNT, "node_agent_k3s_bin": str(tmp_path / "k3s")})
    assert proc.returncode != 0
    for name in ("node_agent_bucket", "node_agent_access_key_id", "node_agent_secret_access_key"):
        assert name in proc.stdout


# --- the stand-in's deploy controller and helm-controller, in process --------------------------------

@pytest.fixture
def store():
    store = apiserver.Store(None)
    manifests.register_crds(store)
    helm.register_crds(store)
    return store


VALUES = """
deployNodeAgent: true
snapshotsEnabled: false
credentials:
  existingSecret: creds
configuration:
  uploaderType: kopia
  volumeSnapshotLocation: []
  backupStorageLocation:
    - name: default
      provider: aws
      bucket: b
      default: true
      config:
        region: auto
        s3ForcePathStyle: "true"
        checksumAlgorithm: ""
schedules:
  hourly:
    schedule: "0 * * * *"
    template:
      ttl: 24h0m0s
  off:
    disabled: true
    schedule: "0 0 * * *"
"""


def chart_manifest(values=VALUES, chart="velero", version="11.4.0", repo=helm.REPOS["velero"], extra=""):
    indented = "\n".join("    " + line for line in values.strip().splitlines())
    return ("apiVersion: helm.cattle.io/v1\nkind: HelmChart\nmetadata:\n  name: velero\nspec:\n  chart: %s\n  version: %s\n"
            "  repo: %s\n  targetNamespace: velero\n  createNamespace: true\n%s  valuesContent: |-\n%s\n"
            % (chart, version, repo, extra, indented))


def names(store, group, plural, namespace=None):
    return sorted(o["metadata"]["name"] for o in store.list(store.find(group, "v1", plural), namespace))


def conditions(store, name="velero"):
    chart = store.get(store.find("helm.cattle.io", "v1", "helmcharts"), "kube-system", name)
    return {c["type"]: c for c in (chart.get("status") or {}).get("conditions") or []}


def test_crds_registered_like_k3s(store):
    """The real helm.cattle.io CRDs (helm-controller v0.17.7), not a hand-made schema."""
    assert ("k3s.cattle.io", "v1", "addons") in store.registry
    charts = store.registry[("helm.cattle.io", "v1", "helmcharts")]
    spec = charts.schema["properties"]["spec"]["properties"]
    assert spec["failurePolicy"]["enum"] == ["abort", "reinstall", "retry"] and "serverSide" in spec
    assert ("helm.cattle.io", "v1", "helmchartconfigs") in store.registry


def test_helmchart_rejected_by_the_real_crd(store):
    """A HelmChart the real CRD rejects never reaches the controller: the API server refuses it."""
    doc = yamlish.load(chart_manifest(extra="  failurePolicy: sometimes\n"))
    with pytest.raises(apiserver.ApiError) as err:
        store.create(store.find("helm.cattle.io", "v1", "helmcharts"), doc, "kube-system")
    assert err.value.code == 422 and "spec.failurePolicy" in err.value.message and '"abort"' in err.value.message


def test_helm_controller_renders_velero_with_the_real_chart(store, tmp_path):
    watcher = manifests.ManifestWatcher(store, tmp_path)
    controller = helm.HelmController(store)
    (tmp_path / "velero.yaml").write_text(chart_manifest(), encoding="utf-8")
    watcher.sync()
    controller.sync()
    assert conditions(store)["Failed"]["status"] == "False", conditions(store)
    assert conditions(store)["JobCreated"]["status"] == "True"
    assert store.get(store.find("batch", "v1", "jobs"), "kube-system", "helm-install-velero")["status"]["succeeded"] == 1
    # the chart's crds/ registered Velero's API, as `helm install` does
    for plural in ("backups", "restores", "schedules", "backupstoragelocations", "podvolumebackups", "backuprepositories"):
        assert ("velero.io", "v1", plural) in store.registry
    assert ("velero.io", "v2alpha1", "datauploads") in store.registry
    assert names(store, "apps", "deployments", "velero") == ["velero"]
    assert names(store, "apps", "daemonsets", "velero") == ["node-agent"]
    assert names(store, "velero.io", "schedules", "velero") == ["velero-hourly"]  # the disabled one is not rendered
    # objects only the real chart makes: its RBAC, the repository maintenance ConfigMap and its flag
    assert "velero-server" in names(store, "rbac.authorization.k8s.io", "clusterrolebindings")
    assert "velero-repo-maintenance" in names(store, "", "configmaps", "velero")
    deploy = store.get(store.find("apps", "v1", "deployments"), "velero", "velero")
    server = deploy["spec"]["template"]["spec"]["containers"][0]
    assert "--uploader-type=kopia" in server["args"] and "--repo-maintenance-job-configmap=velero-repo-maintenance" in server["args"]
    assert deploy["metadata"]["annotations"]["meta.helm.sh/release-name"] == "velero"
    # the upgrade-crds hook (pre-install, hook-succeeded) ran and was removed
    assert not [n for n in names(store, "batch", "jobs", "velero") if "upgrade-crds" in n]
    bsl_res = store.find("velero.io", "v1", "backupstoragelocations")
    controller.check_locations(every=0)
    assert store.get(bsl_res, "velero", "default")["status"]["phase"] == "Unavailable"  # no Secret yet
    store.create(store.find("", "v1", "secrets"), {"metadata": {"name": "creds"}, "stringData": {"cloud": "[default]\n"}}, "velero")
    controller.check_locations(every=0)
    assert store.get(bsl_res, "velero", "default")["status"]["phase"] == "Available"

    # values change: the node agent and the schedule go, HelmChartConfig values are merged, spec.set last
    (tmp_path / "velero.yaml").write_text(chart_manifest(VALUES.replace("deployNodeAgent: true", "deployNodeAgent: false")
                                                         .replace("  hourly:", "  daily:"),
                                                         extra="  set:\n    image.pullPolicy: Always\n"), encoding="utf-8")
    store.create(store.find("helm.cattle.io", "v1", "helmchartconfigs"),
                 {"metadata": {"name": "velero"}, "spec": {"valuesContent": "image:\n  tag: v1.17.9\n  pullPolicy: Never\n"}},
                 "kube-system")
    watcher.sync()
    controller.sync()
    assert conditions(store)["Failed"]["status"] == "False", conditions(store)
    assert names(store, "apps", "daemonsets", "velero") == []
    assert names(store, "velero.io", "schedules", "velero") == ["velero-daily"]
    server = store.get(store.find("apps", "v1", "deployments"), "velero", "velero")["spec"]["template"]["spec"]["containers"][0]
    assert server["image"] == "docker.io/velero/velero:v1.17.9" and server["imagePullPolicy"] == "Always"

    # file removed: K3s's deploy controller deletes nothing (pkg/deploy/controller.go listFilesIn walks present files)
    (tmp_path / "velero.yaml").unlink()
    watcher.sync()
    controller.sync()
    charts = store.find("helm.cattle.io", "v1", "helmcharts")
    assert store.get(charts, "kube-system", "velero")["metadata"]["finalizers"] == [helm.FINALIZER]
    assert names(store, "apps", "deployments", "velero") == ["velero"]
    # the HelmChart deleted: Terminating until helm-controller's remove handler uninstalled the release (Helm keeps
    # the CRDs), then its finalizer goes and the object with it
    store.delete(charts, "kube-system", "velero")
    assert store.get(charts, "kube-system", "velero")["metadata"]["deletionTimestamp"]
    assert names(store, "apps", "deployments", "velero") == ["velero"]
    controller.sync()
    assert names(store, "apps", "deployments", "velero") == [] and names(store, "velero.io", "schedules", "velero") == []
    assert names(store, "helm.cattle.io", "helmcharts", "kube-system") == []
    assert ("velero.io", "v1", "backups") in store.registry


def test_helm_controller_leaves_an_unmanaged_chart_alone(store, tmp_path):
    """helmcharts.helm.cattle.io/unmanaged (helm-controller chart.go shouldManage): no upgrade, no uninstall; the
    finalizer added while it was managed is never removed (pkg/remove/handler.go returns before the remove handler),
    so the chart stays Terminating until someone removes the finalizer, and then goes without an uninstall."""
    controller = helm.HelmController(store)
    charts = store.find("helm.cattle.io", "v1", "helmcharts")
    store.create(charts, yamlish.load(chart_manifest()), "kube-system")
    controller.sync()
    assert names(store, "apps", "deployments", "velero") == ["velero"]
    chart = store.get(charts, "kube-system", "velero")
    chart["metadata"]["annotations"] = {helm.ANNOTATION_UNMANAGED: "true"}
    chart["spec"]["valuesContent"] = VALUES.replace("deployNodeAgent: true", "deployNodeAgent: false")
    store.update(charts, "kube-system", "velero", chart)
    controller.sync()
    assert names(store, "apps", "daemonsets", "velero") == ["node-agent"]  # not upgraded
    store.delete(charts, "kube-system", "velero")
    controller.sync()
    stuck = store.get(charts, "kube-system", "velero")
    assert stuck["metadata"]["deletionTimestamp"] and stuck["metadata"]["finalizers"] == [helm.FINALIZER]
    assert names(store, "apps", "deployments", "velero") == ["velero"]
    stuck["metadata"]["finalizers"] = []
    store.update(charts, "kube-system", "velero", stuck)
    controller.sync()
    assert names(store, "helm.cattle.io", "helmcharts", "kube-system") == []
    assert names(store, "apps", "deployments", "velero") == ["velero"] and names(store, "apps", "daemonsets", "velero") == ["node-agent"]
    # an unmanaged chart never gets the finalizer, and a chart without chart or chartContent is not managed either
    store.create(charts, {**yamlish.load(chart_manifest()), "metadata": {"name": "other", "annotations": {helm.ANNOTATION_UNMANAGED: ""}}},
                 "kube-system")
    controller.sync()
    assert not store.get(charts, "kube-system", "other")["metadata"].get("finalizers")


@pytest.mark.parametrize("manifest,words", [
    # values.schema.json of the real chart: deployNodeAgent is a boolean
    (chart_manifest(VALUES.replace("deployNodeAgent: true", "deployNodeAgent: 'yes'")), ["deployNodeAgent", "boolean"]),
    # rendered fine, but the Schedule breaks Velero's CRD (the chart copies the template as it is)
    (chart_manifest(VALUES.replace("ttl: 24h0m0s", "ttl: 24")), ["spec.template.ttl", "string"]),
    (chart_manifest(chart="traefik", version="39.0.0"), ['chart "traefik" not found']),
    (chart_manifest(version="11.9.9"), ['version "11.9.9" not found']),
    (chart_manifest(repo="https://example.invalid/charts"), ['"velero" not found in https://example.invalid/charts']),
], ids=["values-schema", "crd", "unknown-chart", "unknown-version", "wrong-repo"])
def test_helm_controller_failures_name_the_cause(store, tmp_path, manifest, words):
    controller = helm.HelmController(store)
    store.create(store.find("helm.cattle.io", "v1", "helmcharts"), yamlish.load(manifest), "kube-system")
    controller.sync()
    failed = conditions(store)["Failed"]
    assert failed["status"] == "True" and "INSTALLATION FAILED" in failed["message"], failed
    for word in words:
        assert word in failed["message"], failed["message"]
    assert store.get(store.find("batch", "v1", "jobs"), "kube-system", "helm-install-velero")["status"]["failed"] == 1
    # nothing rejected is stored (what helm created before the failing object stays, as with `helm install`)
    assert ("velero.io", "v1", "schedules") not in store.registry or names(store, "velero.io", "schedules", "velero") == []


def test_helm_set_arguments_follow_helm_controller():
    """chart.go args(): sorted keys; ints, booleans and null with --set; the rest --set-string, commas escaped."""
    spec = {"set": {"b.count": 3, "a.flag": "true", "c.list": "x,y", "d.done": "a\\,b", "e.bool": False}}
    assert helm.set_args(spec) == ["--set", "a.flag=true", "--set", "b.count=3", "--set-string", "c.list=x\\,y",
                                   "--set-string", "d.done=a\\,b", "--set", "e.bool=false"]


def test_kubectl_apply_reads_stdin(k3s):
    doc = json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-stdin", "namespace": "default"}, "data": {"a": "1"}}]})
    assert k3s.kubectl("apply", "-f", "-", stdin=doc).stdout == "configmap/from-stdin created\n"
    assert k3s.kubectl("apply", "-f", "-", stdin=doc).stdout == "configmap/from-stdin unchanged\n"
    assert k3s.kubectl("apply", "-f", "-", stdin=doc.replace('"1"', '"2"')).stdout == "configmap/from-stdin configured\n"


@pytest.mark.parametrize("chart,from_crds_dir", [("velero-11.4.0", True), ("cert-manager-v1.21.1", False),
                                                 ("kube-prometheus-stack-88.5.3", True)])
def test_crds_from_a_crds_directory_are_told_apart(chart, from_crds_dir, tmp_path):
    """Helm installs crds/ (also a subchart's) once and never upgrades them; CRDs in templates/ are release objects."""
    docs = helm.render(Path(os.environ["K3S_STANDIN_HELM"]), "x", "ns", Path(os.environ["K3S_STANDIN_CHARTS"]) / f"{chart}.tgz",
                       [], ["--set", "crds.enabled=true"], [], tmp_path)
    crds = [flag for doc, flag in docs if doc.get("kind") == "CustomResourceDefinition"]
    assert crds and set(crds) == {from_crds_dir}
