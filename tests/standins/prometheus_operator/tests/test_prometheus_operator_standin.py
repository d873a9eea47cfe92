"""The stand-in operator against the stand-in API server with the real Prometheus CRD: what it makes of a Prometheus
object, that a paused one gets no action, and that a new generation rewrites the StatefulSet."""
from __future__ import annotations

import tarfile

import pytest
from kubernetes import client, config

from standins.k3s import apiserver
from standins.prometheus_operator import controller
from support.paths import UPSTREAM_CHARTS

NS, NAME = "monitoring", "k"


@pytest.fixture
def api(tmp_path):
    crd = tmp_path / "crd-prometheuses.yaml"
    with tarfile.open(UPSTREAM_CHARTS / "kube-prometheus-stack-88.5.3.tgz") as chart:
        crd.write_bytes(chart.extractfile("kube-prometheus-stack/charts/crds/crds/crd-prometheuses.yaml").read())
    server = apiserver.start_server(tmp_path / "api", crds=[crd])
    kube = config.new_client_from_config(server.kubeconfig_path)
    client.CoreV1Api(kube).create_namespace({"metadata": {"name": NS}})
    yield server, kube
    server.stop()


def prometheus(kube, paused=False):
    return client.CustomObjectsApi(kube).create_namespaced_custom_object("monitoring.coreos.com", "v1", NS, "prometheuses", {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
        "metadata": {"name": NAME, "labels": {"tier": "critical"}},
        "spec": {"paused": paused, "nodeSelector": {"kubernetes.io/hostname": "n1"}, "podMetadata": {"labels": {"tier": "critical"}},
                 "storage": {"volumeClaimTemplate": {"spec": {"resources": {"requests": {"storage": "1Gi"}}}}}}})


def test_makes_the_statefulset_its_claim_and_pod_and_rewrites_it_on_a_new_generation(api):
    server, kube = api
    obj = prometheus(kube)
    ctl = controller.Controller(server.kubeconfig_path)
    ctl.tick()
    ctl.tick()
    apps, core = client.AppsV1Api(kube), client.CoreV1Api(kube)
    sts = kube.sanitize_for_serialization(apps.read_namespaced_stateful_set("prometheus-k", NS))
    assert sts["metadata"]["labels"] == {"tier": "critical", "operator.prometheus.io/mode": "server"}
    assert sts["metadata"]["ownerReferences"][0]["uid"] == obj["metadata"]["uid"]
    assert sts["spec"]["template"]["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "n1"}
    claim = core.read_namespaced_persistent_volume_claim("prometheus-k-db-prometheus-k-0", NS)
    assert claim.spec.resources.requests == {"storage": "1Gi"}
    pod = core.read_namespaced_pod("prometheus-k-0", NS)
    assert pod.metadata.owner_references[0].kind == "StatefulSet" and pod.metadata.labels["tier"] == "critical"
    assert pod.spec.volumes[0].persistent_volume_claim.claim_name == "prometheus-k-db-prometheus-k-0"
    first = sts["metadata"]["annotations"][controller.HASH_ANNOTATION]

    # Nothing changed: nothing rewritten; a new generation (the pin moved): rewritten from the object.
    ctl.tick()
    assert ctl.log.count("sync prometheus monitoring/k: updated statefulset prometheus-k (input hash changed)") <= 1
    updates = len([line for line in ctl.log if "updated statefulset" in line])
    ctl.tick()
    assert len([line for line in ctl.log if "updated statefulset" in line]) == updates
    client.CustomObjectsApi(kube).patch_namespaced_custom_object("monitoring.coreos.com", "v1", NS, "prometheuses", NAME,
                                                                 {"spec": {"nodeSelector": {"kubernetes.io/hostname": "n2"}}})
    ctl.tick()
    sts = kube.sanitize_for_serialization(apps.read_namespaced_stateful_set("prometheus-k", NS))
    assert sts["spec"]["template"]["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "n2"}
    assert sts["metadata"]["annotations"][controller.HASH_ANNOTATION] != first
    # mergeMetadata: labels set by others (Velero's, say) stay on a rewritten StatefulSet.
    apps.patch_namespaced_stateful_set("prometheus-k", NS, {"metadata": {"labels": {"velero.io/restore-name": "r1"}}})
    client.CustomObjectsApi(kube).patch_namespaced_custom_object("monitoring.coreos.com", "v1", NS, "prometheuses", NAME,
                                                                 {"spec": {"nodeSelector": {"kubernetes.io/hostname": "n3"}}})
    ctl.tick()
    sts = kube.sanitize_for_serialization(apps.read_namespaced_stateful_set("prometheus-k", NS))
    assert sts["metadata"]["labels"]["velero.io/restore-name"] == "r1"
    assert sts["spec"]["template"]["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "n3"}


def test_a_paused_object_gets_no_action_and_an_orphan_pod_is_adopted(api):
    server, kube = api
    prometheus(kube, paused=True)
    ctl = controller.Controller(server.kubeconfig_path)
    ctl.tick()
    apps, core = client.AppsV1Api(kube), client.CoreV1Api(kube)
    assert apps.list_namespaced_stateful_set(NS).items == []
    assert ctl.log == ["sync prometheus monitoring/k: no action taken (the resource is paused)"]
    # A pod restored without owner (Velero drops ownerReferences) is adopted by the StatefulSet restored after it.
    labels = dict(controller.selector_labels(NAME), tier="critical")
    core.create_namespaced_pod(NS, {"metadata": {"name": "prometheus-k-0", "labels": labels},
                                    "spec": {"containers": [{"name": "p", "image": "x"}]}})
    apps.create_namespaced_stateful_set(NS, {"metadata": {"name": "prometheus-k"}, "spec": {
        "replicas": 1, "serviceName": "prometheus-operated", "selector": {"matchLabels": controller.selector_labels(NAME)},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "p", "image": "x"}]}}}})
    ctl.tick()
    pod = core.read_namespaced_pod("prometheus-k-0", NS)
    assert [(o.kind, o.name) for o in pod.metadata.owner_references] == [("StatefulSet", "prometheus-k")]
    assert apps.read_namespaced_stateful_set("prometheus-k", NS).metadata.owner_references is None


def test_a_new_template_rolls_a_parallel_pod_at_once_and_an_ordered_one_once_ready(api):
    """updateStatefulSet: a pod of another revision is deleted for update, with Parallel whatever its state, with
    OrderedReady only once it is Running and Ready; the replacement carries the new revision."""
    server, kube = api
    apps, core = client.AppsV1Api(kube), client.CoreV1Api(kube)
    ctl = controller.Controller(server.kubeconfig_path)
    for name, policy in (("par", "Parallel"), ("ord", "OrderedReady")):
        labels = {"app": name}
        apps.create_namespaced_stateful_set(NS, {"metadata": {"name": name}, "spec": {
            "replicas": 1, "serviceName": name, "podManagementPolicy": policy, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}})
    ctl.tick()
    first = {name: core.read_namespaced_pod("%s-0" % name, NS) for name in ("par", "ord")}
    for name in ("par", "ord"):
        apps.patch_namespaced_stateful_set(name, NS, {"spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/hostname": "n2"}}}}})
    ctl.tick()  # the Parallel pod (Pending, not Ready) is deleted; the OrderedReady one waits
    assert core.list_namespaced_pod(NS, label_selector="app=par").items == []
    assert core.read_namespaced_pod("ord-0", NS).metadata.uid == first["ord"].metadata.uid
    ctl.tick()
    new = core.read_namespaced_pod("par-0", NS)
    sts = kube.sanitize_for_serialization(apps.read_namespaced_stateful_set("par", NS))
    assert new.metadata.labels[controller.REVISION_LABEL] == controller.revision_of(sts) != first["par"].metadata.labels[controller.REVISION_LABEL]
    assert new.spec.node_selector == {"kubernetes.io/hostname": "n2"}
    core.patch_namespaced_pod_status("ord-0", NS, {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})
    ctl.tick()
    assert core.list_namespaced_pod(NS, label_selector="app=ord").items == []
    assert [line for line in ctl.log if "terminating for update" in line] == [
        "statefulset monitoring/par: pod par-0 of revision %s is terminating for update to %s"
        % (first["par"].metadata.labels[controller.REVISION_LABEL], controller.revision_of(sts)),
        "statefulset monitoring/ord: pod ord-0 of revision %s is terminating for update to %s"
        % (first["ord"].metadata.labels[controller.REVISION_LABEL],
           controller.revision_of(kube.sanitize_for_serialization(apps.read_namespaced_stateful_set("ord", NS))))]
