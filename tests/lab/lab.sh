#!/usr/bin/env bash
# The local lab: three systemd hosts as rootful podman containers that Ansible reaches
# over SSH at their addresses, the way a user reaches VPSes.
#   lab.sh up      create what is missing, converge infra.k3s.site, print what it built
#   lab.sh down    remove the hosts, their network and the lab's SSH state
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export CONTAINERS_CONF=${CONTAINERS_CONF:-$root/tests/lab/containers.conf}
export ANSIBLE_COLLECTIONS_PATH=${ANSIBLE_COLLECTIONS_PATH:-$root/.collections}
export ANSIBLE_PIPELINING=1 ANSIBLE_NOCOLOR=1 ANSIBLE_PYTHON_INTERPRETER=auto_silent
# The inventory plugin's credentials: a test API key of the stand-in control service.
TAILSCALE_API_KEY=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["api_keys"][0])' "$root/tests/lab/tailnet.json")
export TAILSCALE_API_KEY
inventory=$root/tests/lab/inventory
state=$root/.lab
network=infra-k3s-lab
subnet=10.213.42.0/24
# The stand-in tailnet (tests/standins/tailscale/) listens on the network's gateway.
tailnet_dir=$root/tests/standins/tailscale
tailnet_state=$state/tailnet
tailnet_url=http://10.213.42.1:8488
tailnet_config=$root/tests/lab/tailnet.json
# The disaster-recovery stand-ins (started by tests/lab/dr/services.py) on the gateway too: moto S3 in
# place of R2 (tests/standins/r2/) and the Cloudflare API stand-in (tests/standins/cloudflare/), where the lab inventory points (node_agent_s3_url,
# dns_cloudflare_base_url), and the stand-in Velero controller against the cluster's API.
dr_dir=$root/tests/lab/dr
dr_state=$state/dr
upstream_charts=$root/../shared/upstream/charts
python=$root/.venv/bin/python
# name image address
hosts=(
  "lab-cp1 bookworm 10.213.42.11"
  "lab-worker1 trixie 10.213.42.12"
  "lab-worker2 bookworm 10.213.42.13"
)

if [ "$(id -u)" -ne 0 ]; then
  echo "error: the lab runs rootful podman containers. Run: sudo make ${MAKE_TARGET:-lab}" >&2
  exit 1
fi

up() {
  mkdir -p "$state/ssh"
  chmod 0700 "$state" "$state/ssh"
  [ -f "$state/ssh/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C infra-k3s-lab -f "$state/ssh/id_ed25519"
  podman network exists "$network" || podman network create --subnet "$subnet" "$network" >/dev/null

  local name release addr
  for entry in "${hosts[@]}"; do
    read -r name release addr <<<"$entry"
    if ! podman container exists "$name"; then
      echo "lab: creating $name (Debian $release) at $addr"
      podman run -d --name "$name" --hostname "$name" --privileged --systemd=always \
        --network "$network" --ip "$addr" --label infra.k3s.lab=1 \
        "localhost/infra-k3s-lab:$release" /lib/systemd/systemd >/dev/null
      ssh-keygen -R "$addr" -f "$state/ssh/known_hosts" >/dev/null 2>&1 || true
    elif [ "$(podman container inspect --format '{{.State.Running}}' "$name")" != true ]; then
      podman start "$name" >/dev/null
    fi
  done
  for entry in "${hosts[@]}"; do
    read -r name release addr <<<"$entry"
    podman exec "$name" systemctl is-system-running --wait >/dev/null || true
    # What a cloud provider's first boot does: the operator's key for root.
    podman exec -i "$name" sh -c 'umask 077; mkdir -p /root/.ssh; cat > /root/.ssh/authorized_keys' <"$state/ssh/id_ed25519.pub"
    for _ in $(seq 1 30); do
      (exec 3<>"/dev/tcp/$addr/22") 2>/dev/null && break
      sleep 1
    done
  done

  tailnet_up
  dr_services_up

  echo "lab: ansible-playbook infra.k3s.bootstrap -i tests/lab/inventory/"
  ansible-playbook infra.k3s.bootstrap -i "$inventory/"
  echo "lab: ansible-playbook infra.k3s.site -i tests/lab/inventory/"
  ansible-playbook infra.k3s.site -i "$inventory/" "$@"
  echo "lab: the tailnet through the infra.k3s.tailscale inventory plugin (tests/lab/inventory/lab.tailscale.yml)"
  ansible-inventory -i "$inventory/lab.tailscale.yml" --graph
  echo "lab: a command over SSH to each node's Tailscale IP (SSH_CONNECTION: client, port, server, port)"
  ansible -i "$inventory/" k3s_cluster -m ansible.builtin.command -a 'printenv SSH_CONNECTION'
  echo "lab: the cluster's nodes, through the fetched kubeconfig over the tailnet (.lab/kubeconfig)"
  ANSIBLE_LOCALHOST_WARNING=false ansible localhost -m kubernetes.core.k8s_info -a "kind=Node kubeconfig=$state/kubeconfig" |
    python3 -c 'import json, sys; text = sys.stdin.read(); data = json.loads(text[text.index("{"):]);
[print("  %-12s %-16s %s" % (n["metadata"]["name"], [a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP"][0],
 [c["status"] for c in n["status"]["conditions"] if c["type"] == "Ready"][0])) for n in data["resources"]]'
  dr_controller_up
  report
}

# The real kubectl on every host (`k3s kubectl` execs it), helm and the upstream chart packages on the
# server (the stand-in Helm controller installs Velero's real chart with them); see
# tests/standins/k3s/README.md. Then what the real cluster has and the lab cannot: an R2 bucket
# and Cloudflare.
dr_services_up() {
  local name release addr
  mkdir -p "$dr_state"
  chmod 0700 "$dr_state"
  for entry in "${hosts[@]}"; do
    read -r name release addr <<<"$entry"
    podman exec "$name" mkdir -p /opt/infra-k3s-upstream/bin
    podman cp "$root/.cache/upstream/bin/kubectl" "$name:/opt/infra-k3s-upstream/bin/kubectl"
  done
  podman exec lab-cp1 mkdir -p /opt/infra-k3s-upstream/charts
  podman cp "$root/.cache/upstream/bin/helm" lab-cp1:/opt/infra-k3s-upstream/bin/helm
  podman cp "$upstream_charts/." lab-cp1:/opt/infra-k3s-upstream/charts/
  "$python" "$dr_dir/services.py" start s3 --dir "$dr_state" --listen "$(lab_listen k3s_cluster node_agent_s3_url)" \
    --bucket "$(lab_var k3s_cluster node_agent_bucket)"
  (umask 077; lab_var all dns_cloudflare_api_token >"$dr_state/cloudflare.token")
  "$python" "$dr_dir/services.py" start cloudflare --dir "$dr_state" --listen "$(lab_listen all dns_cloudflare_base_url)" \
    --zone "$(lab_var all dns_zone)" --token-file "$dr_state/cloudflare.token"
}

dr_controller_up() {
  "$python" "$dr_dir/services.py" start velero --dir "$dr_state" --kubeconfig "$state/kubeconfig"
  echo "lab: waiting for Velero to find the backup storage location Available"
  for _ in $(seq 1 30); do
    ANSIBLE_LOCALHOST_WARNING=false ansible localhost -m kubernetes.core.k8s_info -a \
      "api_version=velero.io/v1 kind=BackupStorageLocation namespace=velero name=default kubeconfig=$state/kubeconfig" 2>/dev/null |
      grep -q '"phase": "Available"' && return 0
    sleep 2
  done
  echo "lab: error: the storage location did not become Available (see $dr_state/velero.log)" >&2
  return 1
}

# A lab setting, from the inventory's files (group all: hosts.yml; k3s_cluster: group_vars).
lab_var() {
  "$python" - "$inventory" "$1" "$2" <<'PY'
import sys, yaml
inventory, group, name = sys.argv[1:]
if group == "all":
    data = yaml.safe_load(open(inventory + "/hosts.yml"))["all"]["vars"]
else:
    data = yaml.safe_load(open("%s/group_vars/%s.yml" % (inventory, group)))
print(data[name])
PY
}

# The address:port of a URL-valued lab setting, for a service to listen on.
lab_listen() {
  lab_var "$1" "$2" | sed -E 's#^[a-z]+://([^/]+).*$#\1#'
}

# The stand-in tailnet: a signed apt repository with the stand-in tailscale package, the
# control service, and this host joined as the controller (interface ts-lab).
tailnet_up() {
  mkdir -p "$tailnet_state"
  chmod 0700 "$tailnet_state"
  "$tailnet_dir/build-repo.sh" "$tailnet_state/repo"
  "$root/tests/lab/k3s/build-release.sh" "$tailnet_state/repo/k3s"
  "$tailnet_dir/services.sh" start --dir "$tailnet_state/control" --listen "${tailnet_url#http://}" \
    --config "$tailnet_config" --pkgs "$tailnet_state/repo"
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["auth_keys"][0]["key"])' "$tailnet_config" \
    >"$tailnet_state/controller.key"
  chmod 0600 "$tailnet_state/controller.key"
  echo "lab: this host joins the tailnet as the controller"
  "$tailnet_dir/host-node.sh" start --dir "$tailnet_state/host" --tun ts-lab --login-server "$tailnet_url" \
    --authkey-file "$tailnet_state/controller.key" --hostname lab-controller --tags tag:lab-controller
}

report() {
  echo
  echo "lab: what was built (read over SSH from each host)"
  printf '  %-12s %-15s %-15s %-31s %-10s %s\n' HOST ADDRESS TAILSCALE OS FIREWALL "OPEN TO THE PUBLIC"
  local name release addr
  for entry in "${hosts[@]}"; do
    read -r name release addr <<<"$entry"
    ssh -q -i "$state/ssh/id_ed25519" -o BatchMode=yes -o UserKnownHostsFile="$state/ssh/known_hosts" \
      -o StrictHostKeyChecking=accept-new "root@$addr" \
      ". /etc/os-release; ufw status | awk '/^Status/{s=\$2} /ALLOW/ && \$2==\"ALLOW\" && \$3==\"Anywhere\"{p=p\$1\" \"} END{printf \"%s|%s\", s, p}' > /tmp/.lab-fw; \
       printf '%s|%s|%s\n' \"\$(tailscale ip -4 2>/dev/null || echo -)\" \"\$PRETTY_NAME\" \"\$(cat /tmp/.lab-fw)\"" |
      while IFS='|' read -r tsip os fw public; do
        printf '  %-12s %-15s %-15s %-31s %-10s %s\n' "$name" "$addr" "$tsip" "$os" "$fw" "$public"
      done
  done
  echo "  backups: Velero (stand-in controller) to moto S3 at $(lab_var k3s_cluster node_agent_s3_url), bucket $(lab_var k3s_cluster node_agent_bucket)"
  echo "  DNS: zone $(lab_var all dns_zone) on the Cloudflare API test server at $(lab_var all dns_cloudflare_base_url)"
  echo "  disaster-recovery drill: docs/disaster-recovery.md, \"Rehearse it in the lab\""
  echo "  admin user: k3sadmin (key: .lab/ssh/id_ed25519), e.g. ssh -i .lab/ssh/id_ed25519 k3sadmin@10.213.42.11"
}

down() {
  local name
  for entry in "${hosts[@]}"; do
    read -r name _ <<<"$entry"
    if podman container exists "$name"; then
      podman rm -f -t 5 "$name" >/dev/null
      echo "lab: removed $name"
    fi
  done
  if [ -d "$dr_state" ]; then
    "$python" "$dr_dir/services.py" stop all --dir "$dr_state" || true
    rm -rf "$dr_state"
  fi
  if [ -d "$tailnet_state" ]; then
    "$tailnet_dir/host-node.sh" stop --dir "$tailnet_state/host" || true
    "$tailnet_dir/services.sh" stop --dir "$tailnet_state/control" || true
    rm -rf "$tailnet_state"
  fi
  podman network rm "$network" >/dev/null 2>&1 || true
  rm -f "$state/ssh/known_hosts" "$state/kubeconfig"
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down ;;
  report) report ;;
  *) echo "usage: $0 up|down|report" >&2; exit 2 ;;
esac
