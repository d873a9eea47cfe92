"""The tailscale role's repository files on the RHEL family, and its refusal to uninstall over the tailnet.

Debian's repository file is checked on real (container) hosts by the Molecule tailscale scenario
(extensions/molecule/tailscale/updater.yml); no RHEL host can be had here, so the role's own task
file for the RPM repository runs on this machine into a temporary directory standing in for
/etc/yum.repos.d, with the facts of each distribution.
"""
from __future__ import annotations

import configparser
import re

import pytest
import yaml


# (distribution facts, the repository path Tailscale's install script picks: scripts/installer.sh)
RPM_DISTROS = [
    ({"distribution": "Fedora", "distribution_major_version": "42", "distribution_version": "42"}, "fedora"),
    ({"distribution": "Rocky", "distribution_major_version": "9", "distribution_version": "9.5"}, "fedora"),
    ({"distribution": "AlmaLinux", "distribution_major_version": "9", "distribution_version": "9.5"}, "fedora"),
    ({"distribution": "RedHat", "distribution_major_version": "9", "distribution_version": "9.5"}, "rhel/9"),
    ({"distribution": "CentOS", "distribution_major_version": "9", "distribution_version": "9"}, "centos/9"),
    ({"distribution": "OracleLinux", "distribution_major_version": "8", "distribution_version": "8.10"}, "oracle/8"),
    ({"distribution": "Amazon", "distribution_major_version": "2023", "distribution_version": "2023"}, "amazon-linux/2023"),
]

# What Tailscale's install script leaves behind when it was run for the unstable track (its .repo
# file as tailscale/tailscale clientupdate/clientupdate_test.go, YUMRepos, shows it).
INSTALL_SCRIPT_UNSTABLE = """
[tailscale-unstable]
name=Tailscale unstable
baseurl=https://pkgs.tailscale.com/unstable/fedora/$basearch
enabled=1
type=rpm
repo_gpgcheck=1
gpgcheck=0
gpgkey=https://pkgs.tailscale.com/unstable/fedora/repo.gpg
"""

# What earlier versions of this role wrote (ansible.builtin.yum_repository, name tailscale-stable).
OLD_ROLE_FILE = """[tailscale-stable]
baseurl = https://pkgs.tailscale.com/stable/rhel/9/$basearch
enabled = 1
gpgcheck = 1
gpgkey = https://pkgs.tailscale.com/stable/rhel/9/repo.gpg
name = Tailscale stable
repo_gpgcheck = 1
"""


def changed(stdout, host="target"):
    """The changed= count of host's PLAY RECAP line."""
    recap = re.search(r"^%s\s*:.*\bchanged=(\d+)" % re.escape(host), stdout, re.M)
    assert recap, stdout
    return int(recap.group(1))


def write_repository(run_ansible, tmp_path, facts, **role_vars):
    reposdir = tmp_path / "yum.repos.d"
    reposdir.mkdir(exist_ok=True)
    play = [{
        "name": "Write Tailscale's RPM repository as the role does",
        "hosts": "target",
        "gather_facts": False,
        "tasks": [{
            "name": "Run the role's repository tasks",
            "ansible.builtin.include_role": {"name": "infra.k3s.tailscale", "tasks_from": "repository-RedHat.yml"},
            "vars": dict({"ansible_facts": dict(facts, os_family="RedHat"), "__tailscale_yum_reposdir": str(reposdir)},
                         **role_vars),
        }],
    }]
    (tmp_path / "repo.yml").write_text(yaml.safe_dump(play))
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"target": {"ansible_connection": "local"}}}}))
    result = run_ansible("ansible-playbook", "-i", "hosts.yml", "repo.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    return reposdir, changed(result.stdout)


def sections(path):
    parser = configparser.RawConfigParser()
    parser.read(path)
    return {name: dict(parser.items(name)) for name in parser.sections()}


@pytest.mark.parametrize("facts,path", RPM_DISTROS, ids=[case[0]["distribution"] for case in RPM_DISTROS])
def test_rpm_repository_is_where_tailscales_updater_reads_it(run_ansible, tmp_path, facts, path):
    reposdir, recap = write_repository(run_ansible, tmp_path, facts)
    assert sorted(p.name for p in reposdir.iterdir()) == ["tailscale.repo"]  # clientupdate.go: yumRepoConfigFile
    repo = sections(reposdir / "tailscale.repo")
    # updateYUMRepoTrack (clientupdate.go) refuses a file with a section not named tailscale-*.
    assert list(repo) == ["tailscale-stable"]
    assert repo["tailscale-stable"]["baseurl"] == f"https://pkgs.tailscale.com/stable/{path}/$basearch"
    assert repo["tailscale-stable"]["gpgkey"] == f"https://pkgs.tailscale.com/stable/{path}/repo.gpg"
    assert repo["tailscale-stable"]["repo_gpgcheck"] == "1"
    # key=value without spaces, as Tailscale's own files: updateYUMRepoTrack rewrites lines starting "baseurl=".
    text = (reposdir / "tailscale.repo").read_text()
    assert re.search(r"^baseurl=https://pkgs\.tailscale\.com/stable/", text, re.M), text
    assert recap == 1


def test_rpm_repository_follows_a_mirror(run_ansible, tmp_path):
    facts = RPM_DISTROS[0][0]
    reposdir = write_repository(run_ansible, tmp_path, facts, tailscale_repo_url="https://mirror.example/tailscale/stable/")[0]
    repo = sections(reposdir / "tailscale.repo")["tailscale-stable"]
    assert repo["baseurl"] == "https://mirror.example/tailscale/stable/fedora/$basearch"


def test_rpm_repository_replaces_the_install_scripts_and_the_old_roles_files(run_ansible, tmp_path):
    reposdir = tmp_path / "yum.repos.d"
    reposdir.mkdir()
    (reposdir / "tailscale.repo").write_text(INSTALL_SCRIPT_UNSTABLE)
    (reposdir / "tailscale-stable.repo").write_text(OLD_ROLE_FILE)
    (reposdir / "fedora.repo").write_text("[fedora]\nname=Fedora\n")
    facts = RPM_DISTROS[3][0]  # RedHat 9
    recap = write_repository(run_ansible, tmp_path, facts)[1]
    assert sorted(p.name for p in reposdir.iterdir()) == ["fedora.repo", "tailscale.repo"]
    assert list(sections(reposdir / "tailscale.repo")) == ["tailscale-stable"]  # one section, no duplicate repo id
    assert (reposdir / "fedora.repo").read_text() == "[fedora]\nname=Fedora\n"
    assert recap == 2
    again = write_repository(run_ansible, tmp_path, facts)[1]
    assert again == 0


# ---------------------------------------------------------------------------------------------
# tailscale_state: absent over the tailnet
# ---------------------------------------------------------------------------------------------

OVER_THE_TAILNET = [
    ({"ansible_host": "100.101.102.103"}, "100.101.102.103"),
    ({"ansible_host": "fd7a:115c:a1e0::53"}, "fd7a:115c:a1e0::53"),
    ({"ansible_host": "cp1.tail1234.ts.net"}, "cp1.tail1234.ts.net"),
    # A Headscale tailnet with its own prefix: the inventory's tailscale_ip names it.
    ({"ansible_host": "{{ tailscale_ip | default(public_ip) }}", "tailscale_ip": "10.77.0.5", "public_ip": "192.0.2.10"},
     "10.77.0.5"),
]


@pytest.mark.parametrize("hostvars,address", OVER_THE_TAILNET, ids=[case[1] for case in OVER_THE_TAILNET])
def test_absent_over_the_tailnet_is_refused_before_any_change(run_ansible, tmp_path, hostvars, address):
    play = [{
        "name": "Remove Tailscale",
        "hosts": "target",
        "gather_facts": True,
        "roles": [{"role": "infra.k3s.tailscale", "tailscale_state": "absent"}],
    }]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    # A local connection stands in for SSH: only the address Ansible would use matters.
    target = dict({"ansible_connection": "local", "public_ip": "192.0.2.10"}, **hostvars)
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"target": target}}}))
    # --check: even if the refusal wrongly passed, this machine would not be changed.
    result = run_ansible("ansible-playbook", "--check", "-i", "hosts.yml", "play.yml")
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    message = " ".join(output.split())
    assert f"Ansible reaches the node over the tailnet ({address})" in message, output
    assert "Nothing was changed. Run it over the node's public address" in message, output
    assert "-e ansible_host=192.0.2.10 --limit target" in message, output
    assert changed(result.stdout) == 0, output


def test_absent_over_the_public_address_goes_ahead(run_ansible, tmp_path):
    play = [{"name": "Remove Tailscale", "hosts": "target", "gather_facts": True,
             "roles": [{"role": "infra.k3s.tailscale", "tailscale_state": "absent"}]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    target = {"ansible_connection": "local", "ansible_host": "{{ tailscale_ip | default(public_ip) }}", "public_ip": "192.0.2.10"}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"target": target}}}))
    # --check on this machine, which has no Tailscale: the steps run and find nothing to remove.
    result = run_ansible("ansible-playbook", "--check", "-i", "hosts.yml", "play.yml")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Refuse to remove Tailscale over the tailnet" in output
    assert "Remove Tailscale's repository" in output
