"""The images of the Velero chart's Helm hooks, as the node_agent role configures the chart, exist on every
K3s minor the collection supports (issue 15, item 1).

The role's HelmChart manifest is rendered by the role's own template (its chart.yml), then the real helm
(.cache/upstream/bin) renders the real chart package from ../shared/upstream/charts/ with the role's
valuesContent for each supported K3s version, as K3s's helm-controller would (`helm template --kube-version`).
Every image of a hook resource (annotation helm.sh/hook) must come from a repository that still publishes tags
and carry a tag that exists there for that cluster.

There is no registry to ask here, so what exists is written down below with its evidence:
- docker.io/bitnamilegacy/kubectl is frozen: Bitnami moved its images there in 2025 and stopped publishing
  (bitnami/charts#35164); it holds no tag for Kubernetes 1.34 or later (vmware-tanzu/helm-charts#727:
  "docker.io/bitnamilegacy/kubectl:1.35: not found", the repository "only contains kubectl:1.33";
  bitnami/charts#36357 for 1.34). docker.io/bitnami/kubectl keeps only `latest` (bitnami/charts#35164).
  Velero chart 11.4.0 builds the hook image as bitnamilegacy/kubectl:<cluster major.minor>
  (vmware-tanzu/helm-charts charts/velero at velero-11.4.0: templates/upgrade-crds/upgrade-crds.yaml,
  initContainers[kubectl], and _helpers.tpl "chart.KubernetesVersion"; values key kubectl.image).
- registry.k8s.io/kubectl is published with every Kubernetes release from v1.28 on (kubernetes/sig-release#2260,
  "Starting 1.28, a standalone image for kubectl will be released as part of the official images"); chart
  12.x tags it with the cluster's vX.Y.Z (_helpers.tpl "chart.KubernetesVersion" at velero-12.1.0), which K3s
  vX.Y.Z+k3sN is built on.
- velero/velero: the release tags of vmware-tanzu/velero (git tags in its repository).
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/
from support.paths import UPSTREAM_CHARTS, upstream_bin  # noqa: E402
from standins.k3s import yamlish  # noqa: E402

# The K3s minors the collection supports (docs/k3s.md, "Versions"), each at a released patch: v1.34.1
# (bitnami/charts#36357 ran it), v1.35.0 (vmware-tanzu/helm-charts#727), v1.36.4+k3s1 (the example inventory)
# and v1.37.2+k3s1 (docs/k3s.md).
K3S_VERSIONS = ["v1.34.1+k3s1", "v1.35.0+k3s1", "v1.36.4+k3s1", "v1.37.2+k3s1"]

FROZEN_REPOSITORIES = {
    "docker.io/bitnamilegacy/kubectl": "frozen at 1.33 (vmware-tanzu/helm-charts#727, bitnami/charts#36357)",
    "docker.io/bitnami/kubectl": "only `latest` since 2025-08 (bitnami/charts#35164)",
}
# vmware-tanzu/velero release tags (git tag, v1.17 and v1.18 lines).
VELERO_TAGS = {"v1.17.0", "v1.17.1", "v1.17.2", "v1.18.0", "v1.18.1"}


def normal_repository(repository: str) -> str:
    """Docker's reference normalisation: no registry means docker.io, no namespace there means library/."""
    first = repository.split("/", 1)[0]
    if "/" not in repository or ("." not in first and ":" not in first and first != "localhost"):
        repository = "docker.io/" + (repository if "/" in repository else "library/" + repository)
    return repository


def split_image(image: str) -> tuple:
    if "@" in image:
        return normal_repository(image.split("@", 1)[0]), "@" + image.split("@", 1)[1]
    repository, tag = image.rpartition(":")[::2]
    if not repository or "/" in tag:
        return normal_repository(image), "latest"
    return normal_repository(repository), tag


def why_missing(image: str, k3s_version: str) -> str:
    """'' when the image exists for a cluster on k3s_version (by the evidence above), else why not."""
    repository, tag = split_image(image)
    if repository in FROZEN_REPOSITORIES:
        return "%s: %s is %s" % (image, repository, FROZEN_REPOSITORIES[repository])
    kube = k3s_version.split("+", 1)[0]
    if repository == "registry.k8s.io/kubectl":
        match = re.match(r"^v1\.(\d+)\.\d+$", tag)
        if not match or int(match.group(1)) < 28 or tag != kube:
            return "%s: registry.k8s.io/kubectl is published per Kubernetes release from v1.28 on; this cluster is %s" % (image, kube)
        return ""
    if repository == "docker.io/velero/velero":
        return "" if tag in VELERO_TAGS else "%s: not a vmware-tanzu/velero release tag" % image
    return "%s: no evidence that this image exists" % image


def test_why_missing_tells_frozen_and_missing_tags():
    """The checker itself: the images chart 11.4.0 and 12.1.0 compute for a 1.35 cluster."""
    assert "frozen" in why_missing("docker.io/bitnamilegacy/kubectl:1.35", "v1.35.0+k3s1")
    assert why_missing("registry.k8s.io/kubectl:v1.35.0", "v1.35.0+k3s1") == ""
    assert "this cluster is v1.35.0" in why_missing("registry.k8s.io/kubectl:v1.36.4", "v1.35.0+k3s1")
    assert why_missing("velero/velero:v1.18.1", "v1.35.0+k3s1") == ""
    assert "release tag" in why_missing("velero/velero:v1.18.9", "v1.35.0+k3s1")
    assert "no evidence" in why_missing("example.org/kubectl:1.35", "v1.35.0+k3s1")


@pytest.fixture(scope="module")
def role_helmchart(tmp_path_factory, ansible_env):
    """Render the role's HelmChart: a play that runs the role's chart.yml with its defaults."""
    work = tmp_path_factory.mktemp("hooks")
    rendered = {}

    def render(values: dict) -> dict:
        key = json.dumps(values, sort_keys=True)
        if key not in rendered:
            rendered[key] = _render(values)
        return rendered[key]

    def _render(values: dict) -> dict:
        manifest = work / ("velero-%d.yaml" % len(list(work.glob("velero-*.yaml"))))
        variables = {"node_agent_r2_account_id": "0123456789abcdef0123456789abcdef", "node_agent_bucket": "velero-backups",
                     "node_agent_prefix": "k3s", "node_agent_access_key_id": "unused", "node_agent_secret_access_key": "unused",
                     "node_agent_manifest_path": str(manifest), "node_agent_values": values}
        vars_file = work / "vars.json"
        vars_file.write_text(json.dumps(variables), encoding="utf-8")
        play = work / "play.yml"
        play.write_text(json.dumps([{"name": "render", "hosts": "localhost", "connection": "local", "gather_facts": False,
                                     "tasks": [{"name": "the role's HelmChart", "ansible.builtin.include_role": {
                                         "name": "infra.k3s.node_agent", "tasks_from": "chart.yml"}}]}]), encoding="utf-8")
        proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", str(play),
                               "-e", "@" + str(vars_file)], env=ansible_env, cwd=str(work), capture_output=True,
                              text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
        return yamlish.load(manifest.read_text(encoding="utf-8"))

    return render


def hook_images(helmchart: dict, k3s_version: str, workdir: Path) -> dict:
    """{hook resource: [images]} of `helm template` of the real chart the HelmChart names, for this K3s."""
    spec = helmchart["spec"]
    chart = UPSTREAM_CHARTS / ("%s-%s.tgz" % (spec["chart"], spec["version"]))
    assert chart.is_file(), "%s is not in ../shared/upstream/charts: the role pins a chart the tests cannot render" % chart.name
    values = workdir / "values.yaml"
    values.write_text(spec["valuesContent"], encoding="utf-8")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir), "HELM_CACHE_HOME": str(workdir / "cache"),
           "HELM_CONFIG_HOME": str(workdir / "config"), "HELM_DATA_HOME": str(workdir / "data"),
           "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    proc = subprocess.run([upstream_bin("helm"), "template", "velero", str(chart), "--namespace", spec["targetNamespace"],
                           "--kube-version", k3s_version, "--values", str(values)],
                          capture_output=True, text=True, timeout=120, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    found = {}
    for doc in (yamlish.load(part) for part in re.split(r"(?m)^---\s*$", proc.stdout)):
        if not isinstance(doc, dict) or "helm.sh/hook" not in ((doc.get("metadata") or {}).get("annotations") or {}):
            continue
        pod = ((doc.get("spec") or {}).get("template") or {}).get("spec") or doc.get("spec") or {}
        images = [c["image"] for key in ("initContainers", "containers") for c in pod.get(key) or []]
        if images:
            found["%s/%s" % (doc["kind"], doc["metadata"]["name"])] = images
    return found


# The role's values, and with the chart's optional kubectl hooks switched on through node_agent_values
# (cleanup-crds: a pre-delete hook; label-namespace: post-install/upgrade, chart 12.x).
@pytest.mark.parametrize("values", [{}, {"cleanUpCRDs": True, "namespace": {"labels": {"backup.infra.k3s/system": "velero"}}}],
                         ids=["role-defaults", "optional-kubectl-hooks"])
@pytest.mark.parametrize("k3s_version", K3S_VERSIONS)
def test_hook_images_exist_for_every_supported_k3s(role_helmchart, values, k3s_version, tmp_path):
    helmchart = role_helmchart(values)
    hooks = hook_images(helmchart, k3s_version, tmp_path)
    assert "Job/velero-upgrade-crds" in hooks, sorted(hooks)  # the pre-install/pre-upgrade CRD hook is rendered
    problems = ["%s: %s" % (name, why) for name, images in sorted(hooks.items())
                for why in (why_missing(image, k3s_version) for image in images) if why]
    assert not problems, "chart %s on K3s %s:\n%s" % (helmchart["spec"]["version"], k3s_version, "\n".join(problems))
