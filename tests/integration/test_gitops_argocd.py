"""infra.k3s.gitops, its ArgoCD part (tasks/argocd.yml, the hand-off) and the starter tree, against the stand-in K3s.

The stand-in's helm-controller installs the real argo-cd chart (../shared/upstream/charts) with the role's values
through the real helm; the AppProject, the root Application, the repository Secret, the route and the starter tree's
objects are validated against the real CRDs in ../shared/upstream/crds (argoproj.io v3.4.4, Gateway API v1.4.0,
bitnami.com). The role runs with ansible_connection=local; its paths (k3s binary, kubeconfig, manifest directory)
are its ordinary variables pointed into the test's directory. The tests of this file run in order on one server.
"""
from __future__ import annotations

import base64
import copy
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/
from support import crd_cel  # noqa: E402
from support.k3s_process import K3s  # noqa: E402
from support.secret_watch import leaks, watched  # noqa: E402
from support.paths import UPSTREAM_CHARTS, UPSTREAM_CRDS, upstream_bin  # noqa: E402
from support.play import k3s_paths, local_server, role_runner  # noqa: E402
from support.recap import localhost_recap  # noqa: E402
from standins.k3s import apiserver, yamlish  # noqa: E402

REPO = "git@github.com:example/homelab-gitops.git"
# A deploy key's shape (not a usable key): what must never leave the vault but for the API's datastore.
KEY_BODY = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQgitopsDEPLOYkey0123456789abcdefARGOCD"
KEY = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_BODY}\n-----END OPENSSH PRIVATE KEY-----\n"
HOSTNAME = "argocd.example.com"
ARGOCD_CRDS = sorted(UPSTREAM_CRDS.glob("argocd-v3.4.4-*.yaml"))
GATEWAY_CRDS = UPSTREAM_CRDS / "gateway-api-v1.4.0-standard"
STARTER_OBJECTS = 8  # 3 Applications; the template's Namespace, Deployment, Service, HTTPRoute, SealedSecret


def needles() -> list:
    return [KEY_BODY, base64.b64encode(KEY.encode()).decode()]


@pytest.fixture(scope="module")
def k3s(tmp_path_factory):
    server = K3s(tmp_path_factory.mktemp("k3s"))
    # The Gateway API CRDs K3s's traefik-crd chart installs (39.0.x: v1.4.0 standard), unless the stand-in has them
    if server.get("crd", "httproutes.gateway.networking.k8s.io") is None:
        server.kubectl("apply", "-f", str(GATEWAY_CRDS))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def starter(tmp_path_factory):
    return tmp_path_factory.mktemp("starter") / "homelab-gitops"


def role_vars(server: K3s, starter_dir: Path | None = None, **extra) -> dict:
    base = {"gitops_repo_url": REPO, "gitops_repo_ssh_key": KEY, "gitops_sealed_secrets_enabled": False,
            "gitops_wait_timeout": 120, "gitops_wait_delay": 3, "dns_zone": "example.com", **k3s_paths(server, "gitops")}
    if starter_dir is not None:
        base["gitops_starter_dir"] = str(starter_dir)
    base.update(extra)
    return base


@pytest.fixture
def converge(run_ansible, tmp_path):
    """The role on localhost (connection local, the one server of k3s_masters); the variables in a 0600 file (the
    vault's stand-in), not on the command line."""
    return role_runner(run_ansible, tmp_path, "infra.k3s.gitops", local_server())


def assert_no_key(proc):
    output = proc.stdout + proc.stderr
    for secret in needles():
        assert secret not in output


def strip_server_fields(obj: dict) -> dict:
    obj = copy.deepcopy(obj)
    obj.pop("status", None)
    meta = obj["metadata"]
    obj["metadata"] = {k: meta[k] for k in ("name", "namespace", "labels", "annotations") if k in meta}
    obj["metadata"].get("annotations", {}).pop("kubectl.kubernetes.io/last-applied-configuration", None)
    return obj


@pytest.fixture(scope="module")
def upstream():
    """An API that has only ../shared/upstream's CRDs (and the stand-in's built-in kinds), with the CRDs' CEL rules;
    made once for the file (the CRDs are large)."""
    files = ARGOCD_CRDS + sorted(GATEWAY_CRDS.glob("*.yaml")) + [UPSTREAM_CRDS / "bitnami.com_sealedsecrets.yaml"]
    store = apiserver.Store(None)
    crds = store.find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    for crd in apiserver.load_crd_files(files):
        store.create(crds, crd, None)
    for name in ("argocd", "myapp"):  # "default" the API has
        store.create(store.find("", "v1", "namespaces"), {"metadata": {"name": name}}, None)
    return store, crd_cel.storage_schemas(files)


# --- the role ------------------------------------------------------------------------------------------------------

def test_check_mode_first_changes_nothing(converge, k3s, starter):
    proc = converge(role_vars(k3s, starter, gitops_argocd_hostname=HOSTNAME), check=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    assert not (k3s.manifests / "infra-k3s-argocd.yaml").exists()
    assert k3s.get("helmchart", "-n", "kube-system", "argocd") is None
    assert k3s.get("namespace", "argocd") is None
    assert not starter.exists()
    assert_no_key(proc)


def test_install_hand_off_and_idempotent(converge, k3s, starter, ansible_env, tmp_path):
    proc, watch = watched(lambda: converge(role_vars(k3s, starter, gitops_argocd_hostname=HOSTNAME), verbosity=3), needles())
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr
    # the deploy key is in no output (-vvv), no process's arguments, no file but the API's datastore
    assert_no_key(proc)
    assert watch.looks > 10 and watch.seen == []
    assert leaks(k3s, tmp_path, needles(), starter.parent, ansible_env["ANSIBLE_HOME"]) == []

    # the hand-off: the HelmChart and its file are gone, ArgoCD and its release stay
    assert not (k3s.manifests / "infra-k3s-argocd.yaml").exists()
    assert k3s.get("helmchart", "-n", "kube-system", "argocd") is None
    for name in ("argocd-server", "argocd-repo-server", "argocd-applicationset-controller"):
        deploy = k3s.get("deployment", "-n", "argocd", name)
        assert deploy["metadata"]["annotations"]["meta.helm.sh/release-name"] == "argocd", name
    assert k3s.get("statefulset", "-n", "argocd", "argocd-application-controller") is not None
    # the role's values reached ArgoCD through the real chart: TLS ends at the Gateway
    params = k3s.get("configmap", "-n", "argocd", "argocd-cmd-params-cm")
    assert params["data"]["server.insecure"] == "true"
    assert "helm-controller: installed argo-cd 10.1.1 as argocd in argocd" in k3s.log.read_text(encoding="utf-8")
    assert "TASK [infra.k3s.gitops : Delete ArgoCD's HelmChart (ArgoCD and its release stay)]" in proc.stdout

    # the repository Secret, labelled for ArgoCD
    secret = k3s.get("secret", "-n", "argocd", "infra-k3s-repository")
    assert secret["metadata"]["labels"]["argocd.argoproj.io/secret-type"] == "repository"
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == {"type": "git", "url": REPO, "sshPrivateKey": KEY}

    # the Application CRD was Established before the root Application was written (the API's resourceVersions)
    crd = k3s.get("crd", "applications.argoproj.io")
    assert {c["type"]: c["status"] for c in crd["status"]["conditions"]}["Established"] == "True"
    root = k3s.get("applications.argoproj.io", "-n", "argocd", "root")
    assert int(root["metadata"]["resourceVersion"]) > int(crd["metadata"]["resourceVersion"])
    assert root["spec"]["source"] == {"repoURL": REPO, "path": "bootstrap", "targetRevision": "HEAD"}
    assert root["spec"]["project"] == "platform"
    assert root["spec"]["syncPolicy"] == {"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["ServerSideApply=true"]}
    project = k3s.get("appprojects.argoproj.io", "-n", "argocd", "platform")
    assert project["spec"]["sourceRepos"] == [REPO, "https://argoproj.github.io/argo-helm"]
    route = k3s.get("httproutes.gateway.networking.k8s.io", "-n", "argocd", "argocd-server")
    assert route["spec"]["hostnames"] == [HOSTNAME]
    assert route["spec"]["parentRefs"][0] == {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public",
                                              "namespace": "ingress", "sectionName": "websecure"}
    assert route["spec"]["rules"][0]["backendRefs"][0]["name"] == "argocd-server"

    # the starter tree, every file written
    files = sorted(str(p.relative_to(starter)) for p in starter.rglob("*") if p.is_file())
    assert files == sorted(["README.md", "bootstrap/argocd.yaml", "bootstrap/infrastructure.yaml", "bootstrap/apps.yaml",
                            "infrastructure/README.md", "apps/README.md", "apps/_template/namespace.yaml",
                            "apps/_template/deployment.yaml", "apps/_template/service.yaml", "apps/_template/httproute.yaml",
                            "apps/_template/sealedsecret.yaml"])
    assert all(stat.S_IMODE((starter / f).stat().st_mode) == 0o644 for f in files)

    # the user edits a file; the second run keeps it, re-creates nothing and changes nothing
    edited = starter / "apps" / "_template" / "service.yaml"
    edited.write_text(edited.read_text(encoding="utf-8").replace("port: 80", "port: 8080"), encoding="utf-8")
    again = converge(role_vars(k3s, starter, gitops_argocd_hostname=HOSTNAME))
    assert again.returncode == 0, again.stdout[-4000:]
    assert localhost_recap(again)["changed"] == 0, again.stdout[-6000:]
    assert "port: 8080" in edited.read_text(encoding="utf-8")
    assert k3s.get("helmchart", "-n", "kube-system", "argocd") is None
    assert not (k3s.manifests / "infra-k3s-argocd.yaml").exists()
    assert k3s.get("deployment", "-n", "argocd", "argocd-server") is not None


def test_objects_validate_against_the_upstream_crds(k3s, upstream):
    """What the API stores from the role, created again in an API that has only ../shared/upstream's CRDs, and their
    CEL rules; a broken copy is refused there (the validation is real)."""
    store, rules = upstream
    stored = [("argoproj.io", "appprojects", k3s.get("appprojects.argoproj.io", "-n", "argocd", "platform")),
              ("argoproj.io", "applications", k3s.get("applications.argoproj.io", "-n", "argocd", "root")),
              ("gateway.networking.k8s.io", "httproutes", k3s.get("httproutes.gateway.networking.k8s.io", "-n", "argocd", "argocd-server")),
              ("", "secrets", k3s.get("secret", "-n", "argocd", "infra-k3s-repository"))]
    for group, plural, obj in stored:
        version = obj["apiVersion"].rpartition("/")[2]
        store.create(store.find(group, version, plural), strip_server_fields(obj), "argocd")
        if group:
            assert crd_cel.violations(obj, rules) == [], obj["kind"]
    broken = strip_server_fields(stored[1][2])
    broken["metadata"]["name"] = "broken"
    del broken["spec"]["destination"]
    with pytest.raises(apiserver.ApiError) as err:
        store.create(store.find("argoproj.io", "v1alpha1", "applications"), broken, "argocd")
    assert err.value.code == 422 and "spec.destination" in err.value.message


def test_without_hand_off_the_helmchart_stays_and_the_route_goes(converge, k3s, starter):
    """gitops_argocd_self_managed false: the HelmChart comes back (helm-controller upgrades the release in place);
    gitops_argocd_hostname emptied: the role's route is deleted."""
    proc = converge(role_vars(k3s, starter, gitops_argocd_self_managed=False))
    assert proc.returncode == 0, proc.stdout[-4000:]
    manifest = k3s.manifests / "infra-k3s-argocd.yaml"
    assert stat.S_IMODE(manifest.stat().st_mode) == 0o600
    chart = yamlish.load(manifest.read_text(encoding="utf-8"))
    assert chart["spec"]["chart"] == "argo-cd" and chart["spec"]["version"] == "10.1.1"
    assert chart["spec"]["repo"] == "https://argoproj.github.io/argo-helm" and chart["spec"]["targetNamespace"] == "argocd"
    assert k3s.get("httproutes.gateway.networking.k8s.io", "-n", "argocd", "argocd-server") is None
    # helm-controller took the release back: the chart is managed (its finalizer) and installed
    assert k3s.get("helmchart", "-n", "kube-system", "argocd")["metadata"]["finalizers"] == ["wrangler.cattle.io/on-helm-chart-remove"]


def test_the_chart_renders_the_roles_values(k3s, tmp_path):
    """The real helm renders the real chart with the values the role wrote: server.insecure reaches
    argocd-cmd-params-cm, which argocd-server reads; the chart's defaults, for contrast, leave it out."""
    chart = yamlish.load((k3s.manifests / "infra-k3s-argocd.yaml").read_text(encoding="utf-8"))

    def render(values: str) -> list:
        path = tmp_path / "values.yaml"
        path.write_text(values, encoding="utf-8")
        proc = subprocess.run([upstream_bin("helm"), "template", "argocd", str(UPSTREAM_CHARTS / "argo-cd-10.1.1.tgz"),
                               "--namespace", "argocd", "--values", str(path)], capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        return [d for d in yaml.load_all(proc.stdout, Loader=yaml.CSafeLoader) if d]  # 33,000 lines: libyaml

    docs = render(chart["spec"]["valuesContent"])
    params = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "argocd-cmd-params-cm")
    assert params["data"]["server.insecure"] == "true"
    server = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "argocd-server")
    env = {e["name"]: e for e in server["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["ARGOCD_SERVER_INSECURE"]["valueFrom"]["configMapKeyRef"] == {"name": "argocd-cmd-params-cm", "key": "server.insecure",
                                                                             "optional": True}
    crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    assert {c["metadata"]["name"] for c in crds} >= {"applications.argoproj.io", "appprojects.argoproj.io"}
    assert all(c["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep" for c in crds)
    plain = render("{}\n")
    params = next(d for d in plain if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "argocd-cmd-params-cm")
    assert "server.insecure" not in (params.get("data") or {})


def test_starter_tree_parses_and_validates(starter, upstream):
    """Every YAML of the starter tree parses; each object validates against the real CRDs (argoproj.io, Gateway API,
    bitnami.com) and the stand-in API's kinds, with the CRDs' CEL rules."""
    store, rules = upstream
    objects = []
    for path in sorted(starter.rglob("*.yaml")):
        for doc in yamlish.load_all(path.read_text(encoding="utf-8")):
            if doc:
                objects.append((path, doc))
    assert len(objects) == STARTER_OBJECTS
    by_kind = {}
    for path, doc in objects:
        group, unused, version = doc["apiVersion"].rpartition("/")
        res = next(r for r in store.registry.values() if r.group == group and r.version == version and r.kind == doc["kind"])
        if doc["kind"] == "Namespace":
            continue  # created above
        store.create(res, copy.deepcopy(doc), doc["metadata"].get("namespace"))
        if group and (doc["apiVersion"], doc["kind"]) in rules:
            assert crd_cel.violations(doc, rules) == [], path
        by_kind.setdefault(doc["kind"], []).append(doc)
    apps = {a["metadata"]["name"]: a for a in by_kind["Application"]}
    assert sorted(apps) == ["apps", "argocd", "infrastructure"]
    # ArgoCD's own Application: the chart, release name and values the role installs with
    helm = apps["argocd"]["spec"]["source"]["helm"]
    assert apps["argocd"]["spec"]["source"]["chart"] == "argo-cd" and apps["argocd"]["spec"]["source"]["targetRevision"] == "10.1.1"
    assert helm["releaseName"] == "argocd" and helm["valuesObject"]["configs"]["params"]["server.insecure"] is True
    assert apps["apps"]["spec"]["source"]["directory"] == {"recurse": True, "exclude": "_template/*"}
    assert apps["apps"]["spec"]["source"]["repoURL"] == REPO
    route = by_kind["HTTPRoute"][0]
    assert route["spec"]["hostnames"] == ["myapp.apps.example.com"]
    assert by_kind["SealedSecret"][0]["spec"]["template"]["metadata"] == {"name": "myapp", "namespace": "myapp"}


@pytest.mark.parametrize("override,message", [
    ({"gitops_argocd_enabled": True, "gitops_repo_url": ""}, "Set gitops_repo_url to the GitOps repository"),
    ({"gitops_repo_ssh_key": ""}, "gitops_repo_url is an SSH URL: set gitops_repo_ssh_key"),
    ({"gitops_repo_url": "https://github.com/example/homelab-gitops.git"}, "gitops_repo_ssh_key is for SSH URLs"),
], ids=["no-repo", "ssh-without-key", "https-with-key"])
def test_bad_input_fails_before_any_change(converge, tmp_path, override, message):
    fresh = SimpleNamespace(bin=tmp_path / "fresh" / "k3s", kubeconfig=tmp_path / "fresh" / "k3s.yaml", manifests=tmp_path / "fresh" / "m")
    proc = converge(role_vars(fresh, tmp_path / "fresh" / "starter", **override), verbosity=3)
    assert proc.returncode != 0 and message in proc.stdout, proc.stdout[-3000:]
    assert not (tmp_path / "fresh").exists()
    assert_no_key(proc)
