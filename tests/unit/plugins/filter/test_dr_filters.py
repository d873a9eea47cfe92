"""plugins/filter/dr_*.py through ansible-playbook: the filters load as infra.k3s.*, read the shapes the roles and
playbooks give them (kubectl's -o json List, k8s_info results) and turn a selector Kubernetes refuses into a
filter error naming the filter. The decisions themselves are unit-tested in tests/unit/plugins/module_utils."""
from __future__ import annotations

import json

PVS = {"apiVersion": "v1", "kind": "List", "items": [
    {"metadata": {"name": "pvc-1"},
     "spec": {"hostPath": {"path": "/var/lib/rancher/k3s/storage/pvc-1_shop_data", "type": "DirectoryOrCreate"},
              "claimRef": {"namespace": "shop", "name": "data"},
              "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                  {"key": "kubernetes.io/hostname", "operator": "In", "values": ["agent1"]}]}]}}},
     "status": {"phase": "Bound"}}]}
BACKUPS = {"resources": [
    {"metadata": {"name": "b1"}, "spec": {"includedNamespaces": ["shop"], "labelSelector": {"matchExpressions": [
        {"key": "app", "operator": "Exists", "values": ["x"]}]}}, "status": {"phase": "Completed", "startTimestamp": "2026-01-01T00:00:00Z"}}]}


def write_play(tmp_path, tasks):
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars": {"pvs_json": json.dumps(PVS), "backups": BACKUPS}, "tasks": tasks}]
    (tmp_path / "play.yml").write_text(json.dumps(play), encoding="utf-8")


def test_filters_through_ansible(run_ansible, tmp_path):
    write_play(tmp_path, [
        {"name": "volumes", "ansible.builtin.debug": {"msg": "VOLUMES={{ pvs_json | from_json | infra.k3s.dr_node_volumes('agent1') | to_json }}"}},
        {"name": "plan", "ansible.builtin.debug": {"msg": "PLAN={{ ('agent1' | infra.k3s.dr_failover_plan(pvs=pvs_json | from_json)).volumes | to_json }}"}},
    ])
    proc = run_ansible("ansible-playbook", "-i", "localhost,", "play.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ('VOLUMES=[{"pv": "pvc-1", "path": "/var/lib/rancher/k3s/storage/pvc-1_shop_data", "type": "DirectoryOrCreate", '
            '"phase": "Bound", "claim": "shop/data"}]') in proc.stdout.replace('\\"', '"')
    assert 'PLAN=["pvc-1"]' in proc.stdout.replace('\\"', '"')


def test_a_selector_kubernetes_refuses_fails_the_filter(run_ansible, tmp_path):
    write_play(tmp_path, [{"name": "pick", "ansible.builtin.debug": {
        "msg": "{{ backups | infra.k3s.dr_pick_backup([{'namespace': 'shop', 'labels': {'app': 'web'}}]) }}"}}])
    proc = run_ansible("ansible-playbook", "-i", "localhost,", "play.yml")
    assert proc.returncode != 0
    assert "dr_pick_backup: values set must be empty for exists and does not exist (key app)" in proc.stdout + proc.stderr
