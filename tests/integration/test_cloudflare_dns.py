"""infra.k3s.cloudflare_dns / cloudflare_dns_info and playbooks/dns.yml, run by ansible-playbook
against the Cloudflare API stand-in (tests/standins/cloudflare/) on loopback.

Set CLOUDFLARE_SDK4_PYTHON to a Python that has cloudflare 4.x installed to run the core
scenarios with the SDK 4 call shapes too (the modules only need the SDK there, not Ansible).
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/, for standins.cloudflare
from standins.cloudflare import ALL_PERMISSIONS, DEFAULT_TOKEN, CloudflareAPIServer  # noqa: E402

FIXTURES = HERE / "cloudflare"
ZONE = "example.com"
API_ZONES = "/client/v4/zones"
DNS = "infra.k3s.cloudflare_dns"
INFO = "infra.k3s.cloudflare_dns_info"
CLEAN_ENV = {"CLOUDFLARE_API_TOKEN": "", "CLOUDFLARE_EMAIL": "", "CLOUDFLARE_API_KEY": "",
             "CLOUDFLARE_API_USER_SERVICE_KEY": "", "CLOUDFLARE_BASE_URL": ""}

PYTHONS = [pytest.param(sys.executable, id="sdk-installed")]
if os.environ.get("CLOUDFLARE_SDK4_PYTHON"):
    PYTHONS.append(pytest.param(os.environ["CLOUDFLARE_SDK4_PYTHON"], id="sdk4"))


def assert_sdk_used(server, python):
    """The requests came from the SDK of that interpreter (it sends its version in X-Stainless-Package-Version)."""
    versions = {entry["sdk_version"] for entry in server.requests()}
    assert len(versions) == 1 and None not in versions, versions
    if python == os.environ.get("CLOUDFLARE_SDK4_PYTHON"):
        assert versions.pop().startswith("4."), versions


@pytest.fixture
def server():
    with CloudflareAPIServer(zones=(ZONE, "example.net")) as srv:
        yield srv


class Runner(object):
    """Writes a playbook of module tasks, runs it, returns (process, registered results)."""

    def __init__(self, run_ansible, tmp_path, server):
        self.run_ansible = run_ansible
        self.tmp_path = tmp_path
        self.server = server
        self.count = 0

    def __call__(self, *tasks, token=DEFAULT_TOKEN, check=False, diff=False, verbosity=0, env=None,
                 python=None, defaults=None):
        self.count += 1
        group_defaults = {"base_url": self.server.base_url, "max_retries": 3, "timeout": 10}
        if token is not None:
            group_defaults["api_token"] = "{{ cf_token }}"
        group_defaults.update(defaults or {})
        play_tasks = []
        for index, task in enumerate(tasks):
            task = dict(task)
            module = task.pop("module", DNS)
            entry = {"name": "task %d" % index, module: task.pop("args", task), "register": "r%d" % index, "ignore_errors": True}
            play_tasks.append(entry)
        play_tasks.append({
            "name": "save results",  # debug runs on the controller: cheaper than a module
            "ansible.builtin.debug": {"msg": "{{ [%s] | to_json }}" % ", ".join("r%d" % i for i in range(len(tasks)))},
        })
        play = [{"name": "cloudflare", "hosts": "localhost", "connection": "local", "gather_facts": False,
                 "vars": {"cf_token": token or ""},
                 "module_defaults": {"group/infra.k3s.cloudflare": group_defaults},
                 "tasks": play_tasks}]
        playbook = self.tmp_path / ("play-%d.yml" % self.count)
        playbook.write_text(json.dumps(play, indent=1))
        args = ["-i", "localhost,", str(playbook)]
        if check:
            args.append("--check")
        if diff:
            args.append("--diff")
        if verbosity:
            args.append("-" + "v" * verbosity)
        extra = dict(CLEAN_ENV)
        extra["ANSIBLE_PYTHON_INTERPRETER"] = python or sys.executable
        extra.update(env or {})
        proc = self.run_ansible("ansible-playbook", *args, extra_env=extra)
        return proc, saved_results(proc.stdout)


def saved_results(stdout):
    """The registered results printed by the last task ('save results') of a Runner playbook."""
    marker = stdout.rfind("TASK [save results]")
    assert marker >= 0, stdout
    start = stdout.index("{", stdout.index("ok: [localhost]", marker))
    printed, _end = json.JSONDecoder().raw_decode(stdout, start)
    return json.loads(printed["msg"])


@pytest.fixture
def play(run_ansible, tmp_path, server):
    return Runner(run_ansible, tmp_path, server)


def values(server, name, rtype):
    return sorted(rec["content"] for rec in server.get_records(ZONE, name, rtype))


def batch_requests(server, since=0):
    return server.requests(since, method="POST", path_contains="/dns_records/batch")


# ---------------------------------------------------------------------------------------
# Create, no-op, change, absent
# ---------------------------------------------------------------------------------------

SITE = {
    "zone": ZONE,
    "ttl": 300,
    "records": [
        {"name": "www", "type": "A", "values": ["192.0.2.1", "192.0.2.2"]},
        {"name": "www", "type": "AAAA", "values": ["2001:DB8:0:0::1"]},
        {"name": "@", "type": "TXT", "values": ["v=spf1 mx -all", "k=" + "x" * 300]},
        {"name": "@", "type": "MX", "values": ["10 MX1.example.net.", "20 mx2.example.net"], "ttl": 3600},
        {"name": "_sip._tcp", "type": "SRV", "values": ["10 5 5060 sip.example.com"]},
        {"name": "@", "type": "CAA", "values": ['0 issue "letsencrypt.org"']},
        {"name": "docs", "type": "CNAME", "values": ["Pages.example.net."], "proxied": True, "ttl": 1},
        {"name": "ns", "type": "NS", "values": ["ns1.example.net", "ns2.example.net"]},
    ],
}


@pytest.mark.parametrize("python", PYTHONS)
def test_create_then_noop_then_change(play, server, python):
    proc, (created,) = play(SITE, python=python)
    assert not created.get("failed"), created
    assert created["changed"] is True
    assert len(batch_requests(server)) == 1 and len(server.writes()) == 1
    body = batch_requests(server)[0]["body"]
    assert len(body["posts"]) == 12 and "deletes" not in body
    assert values(server, "www.example.com", "A") == ["192.0.2.1", "192.0.2.2"]
    assert values(server, "www.example.com", "AAAA") == ["2001:db8::1"]
    assert values(server, "docs.example.com", "CNAME") == ["pages.example.net"]
    assert server.get_records(ZONE, "docs.example.com")[0]["proxied"] is True
    txt = server.get_records(ZONE, "example.com", "TXT")
    assert any(rec["content"].count('" "') == 1 for rec in txt)  # Cloudflare split the long one
    assert len(created["records"]) == 12 and all(rec["id"] for rec in created["records"])
    assert len(created["created"]) == 12 and all(rec["id"] for rec in created["created"])

    mark = server.mark()
    proc, (again,) = play(SITE, python=python)
    assert again["changed"] is False, again
    assert server.writes(mark) == [], "a no-op run must not write"
    assert [r["method"] for r in server.requests(mark)] == ["GET", "GET"]  # zone lookup + one list
    assert again["batch"] == {"deletes": 0, "patches": 0, "puts": 0, "posts": 0}

    mark = server.mark()
    changed = dict(SITE, records=[dict(SITE["records"][0], values=["192.0.2.2", "192.0.2.3"])] + SITE["records"][1:])
    changed["records"][2] = dict(changed["records"][2], values=["v=spf1 mx -all"])  # one TXT value less
    proc, (result,) = play(changed, python=python)
    assert result["changed"] is True
    assert len(server.writes(mark)) == 1
    body = batch_requests(server, mark)[0]["body"]
    assert [len(body.get(k, [])) for k in ("deletes", "patches", "puts", "posts")] == [1, 0, 1, 0]
    assert values(server, "www.example.com", "A") == ["192.0.2.2", "192.0.2.3"]
    assert len(server.get_records(ZONE, "example.com", "TXT")) == 1
    assert_sdk_used(server, python)


def test_value_change_is_one_batch_with_no_moment_without_a_record(play, server):
    server.op_delay = 0.05  # committed changes reach "the edge" one by one, as at Cloudflare
    old = server.add_record(ZONE, "api", "A", "192.0.2.10", ttl=60)

    def watch(stop, seen):
        while not stop.is_set():
            seen.append(len(server.get_records(ZONE, "api.example.com", "A")))
            time.sleep(0.002)

    # Control: a delete-then-create batch does leave a moment with no record, and the watcher sees it.
    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=watch, args=(stop, seen))
    watcher.start()
    zone_id = server.zone_id(ZONE)
    response = httpx.post("%s/zones/%s/dns_records/batch" % (server.base_url, zone_id),
                          headers={"Authorization": "Bearer " + DEFAULT_TOKEN},
                          json={"deletes": [{"id": old["id"]}],
                                "posts": [{"name": "api", "type": "A", "content": "192.0.2.10", "ttl": 60}]})
    stop.set()
    watcher.join()
    assert response.status_code == 200 and 0 in seen
    current = server.get_records(ZONE, "api.example.com", "A")[0]

    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=watch, args=(stop, seen))
    watcher.start()
    mark = server.mark()
    try:
        proc, (result,) = play({"zone": ZONE, "name": "api", "type": "A", "values": ["192.0.2.20"], "ttl": 60})
    finally:
        stop.set()
        watcher.join()
    assert result["changed"] is True, result
    assert len(server.writes(mark)) == 1
    assert seen and 0 not in seen, "the name was without a record during the change"
    (now,) = server.get_records(ZONE, "api.example.com", "A")
    assert now["content"] == "192.0.2.20" and now["id"] == current["id"]  # replaced in place


def test_absent_and_non_exclusive(play, server):
    server.add_record(ZONE, "old", "A", "192.0.2.1")
    server.add_record(ZONE, "old", "A", "192.0.2.2")
    server.add_record(ZONE, "_acme-challenge", "TXT", "first")
    keep = server.add_record(ZONE, "keep", "A", "192.0.2.9")
    proc, results = play(
        {"zone": ZONE, "name": "old", "type": "A", "state": "absent", "values": ["192.0.2.2"]},
        {"zone": ZONE, "name": "_acme-challenge", "type": "TXT", "values": ["second"], "exclusive": False},
        {"zone": ZONE, "name": "old", "type": "A", "state": "absent"},
        {"zone": ZONE, "name": "old", "type": "A", "state": "absent"},
    )
    assert [r["changed"] for r in results] == [True, True, True, False]
    assert [len(r["deleted"]) for r in results] == [1, 0, 1, 0]
    assert values(server, "old.example.com", "A") == []
    # Cloudflare keeps TXT content as it was sent: "first" was added unquoted, the module sends quoted strings
    assert values(server, "_acme-challenge.example.com", "TXT") == ['"second"', "first"]
    assert server.get_records(ZONE, "keep.example.com") == [keep]


def test_value_change_keeps_settings_and_what_the_task_does_not_set(play, server):
    """Issue 16, item 2: a PUT replaces the whole record, so settings, private_routing, TTL and proxied
    (when the task does not set them), comment and tags are carried over; TTL and proxied left alone."""
    server.add_record(ZONE, "www", "A", "192.0.2.1", proxied=True, settings={"ipv4_only": True}, private_routing=True,
                      comment="web", tags=["team:web"])
    server.add_record(ZONE, "c", "CNAME", "old.example.net", ttl=300, settings={"flatten_cname": True})
    server.add_record(ZONE, "t", "TXT", '"same"', ttl=3600)
    task = {"zone": ZONE, "records": [{"name": "www", "type": "A", "values": ["192.0.2.2"]},
                                      {"name": "c", "type": "CNAME", "values": ["new.example.net"]},
                                      {"name": "t", "type": "TXT", "values": ["same"]}]}
    proc, (result, again) = play(task, task)
    assert result["changed"] is True and result["batch"] == {"deletes": 0, "patches": 0, "puts": 2, "posts": 0}, result
    (www,) = server.get_records(ZONE, "www.example.com")
    assert (www["content"], www["proxied"], www["ttl"], www["settings"], www["private_routing"], www["comment"], www["tags"]) == (
        "192.0.2.2", True, 1, {"ipv4_only": True}, True, "web", ["team:web"])
    (cname,) = server.get_records(ZONE, "c.example.com")
    assert (cname["content"], cname["ttl"], cname["settings"]) == ("new.example.net", 300, {"flatten_cname": True})
    assert server.get_records(ZONE, "t.example.com")[0]["ttl"] == 3600
    assert {r["name"]: r["settings"] for r in result["updated"]} == {"www.example.com": {"ipv4_only": True},
                                                                     "c.example.com": {"flatten_cname": True}}
    assert again["changed"] is False and len(server.writes()) == 1, again


def test_multi_string_txt_is_kept_as_written(play, server):
    """Issue 16, item 3: "a" "b" stays two strings; values compare as Cloudflare stores them."""
    server.add_record(ZONE, "spf", "TXT", '"v=spf1 " "-all"')  # two strings on the wire
    server.add_record(ZONE, "plain", "TXT", "v=spf1 mx -all")  # stored unquoted, as sent
    task = {"zone": ZONE, "records": [{"name": "multi", "type": "TXT", "values": ['"part one" "part two"', "single"]},
                                      {"name": "spf", "type": "TXT", "values": ["v=spf1 -all"]},
                                      {"name": "plain", "type": "TXT", "values": ["v=spf1 mx -all"]}]}
    proc, (result, again) = play(task, task)
    assert result["changed"] is True and result["batch"] == {"deletes": 0, "patches": 0, "puts": 1, "posts": 2}, result
    assert values(server, "multi.example.com", "TXT") == ['"part one" "part two"', '"single"']
    assert values(server, "spf.example.com", "TXT") == ['"v=spf1 -all"']
    assert values(server, "plain.example.com", "TXT") == ["v=spf1 mx -all"]
    assert sorted(r["value"] for r in result["records"] if r["name"] == "multi.example.com") == ['"part one" "part two"', "single"]
    assert again["changed"] is False and len(server.writes()) == 1, again


# ---------------------------------------------------------------------------------------
# Check mode and diff
# ---------------------------------------------------------------------------------------

def test_check_mode_makes_no_write_and_predicts(play, server):
    server.add_record(ZONE, "www", "A", "192.0.2.1")
    before = server.get_records(ZONE)
    proc, (result,) = play({"zone": ZONE, "records": [{"name": "www", "type": "A", "values": ["192.0.2.2"]},
                                                      {"name": "api", "type": "A", "values": ["192.0.2.3"]}]},
                           check=True, diff=True)
    assert result["changed"] is True, result
    assert server.writes() == []
    assert server.get_records(ZONE) == before
    assert [r["value"] for r in result["created"]] == ["192.0.2.3"] and result["created"][0]["id"] is None
    assert [r["value"] for r in result["updated"]] == ["192.0.2.2"]
    assert {d["before_header"] for d in result["diff"]} == {"www.example.com A (before)", "api.example.com A (before)"}


def test_diff_shows_before_and_after_per_record_set(play, server):
    server.add_record(ZONE, "www", "A", "192.0.2.1")
    server.add_record(ZONE, "mail", "A", "192.0.2.5")
    proc, (result,) = play({"zone": ZONE, "records": [{"name": "www", "type": "A", "values": ["192.0.2.2"]},
                                                      {"name": "mail", "type": "A", "values": ["192.0.2.5"]},
                                                      {"name": "api", "type": "A", "values": ["192.0.2.3"], "ttl": 60}]},
                           diff=True)
    assert result["changed"] is True
    out = proc.stdout[:proc.stdout.rfind("TASK [save results]")]
    assert "--- before: www.example.com A (before)" in out and "+++ after: www.example.com A (after)" in out
    assert "-www.example.com. auto IN A 192.0.2.1" in out and "+www.example.com. auto IN A 192.0.2.2" in out
    assert "+api.example.com. 60 IN A 192.0.2.3" in out
    assert "mail.example.com" not in out  # unchanged sets have no diff


# ---------------------------------------------------------------------------------------
# Failures
# ---------------------------------------------------------------------------------------

def test_invalid_input_is_rejected_before_any_request(play, server):
    proc, results = play(
        {"zone": ZONE, "name": "www", "type": "A", "values": ["2001:db8::1"]},
        {"zone": ZONE, "name": "www", "type": "CNAME", "values": ["a.example.net", "b.example.net"]},
        {"zone": ZONE, "records": [{"name": "www", "type": "CNAME", "values": ["a.example.net"]},
                                   {"name": "www", "type": "A", "values": ["192.0.2.1"]}]},
        {"zone": ZONE, "name": "www", "type": "A", "values": ["192.0.2.1"], "ttl": 5},
        {"zone": ZONE, "records": [{"name": "www", "type": "A", "values": ["192.0.2.1"], "tags": ["team:web", "no-colon"]}]},
        {"zone": ZONE, "name": "www", "type": "A", "values": ["192.0.2.1"], "max_batch_size": 5000},
    )
    assert all(r.get("failed") for r in results), results
    messages = [r["msg"] for r in results]
    assert "not an IPv4 address" in messages[0]
    assert "exactly one value" in messages[1]
    assert "CNAME beside other types" in messages[2]
    assert "ttl 5 is out of range" in messages[3]
    assert "records[0] (www A): tag 'no-colon' is not name:value" in messages[4]  # issue 16, item 1
    assert "max_batch_size 5000 is out of range" in messages[5]
    assert all("nothing was sent" in m for m in messages)
    assert server.requests() == []


def test_invalid_zone_fails_cleanly_before_any_request(play, server):
    # The zone is normalised before anything else; its InvalidInput once escaped run_dns as a module traceback.
    proc, results = play({"zone": "bad zone!", "name": "www", "type": "A", "values": ["192.0.2.1"]})
    assert results[0].get("failed"), results
    assert results[0]["msg"].startswith("Invalid input, nothing was sent to Cloudflare: zone 'bad zone!'"), results
    assert "module_stderr" not in results[0]
    assert server.requests() == []


def test_more_changes_than_one_batch_allows_fail_before_any_write(play, server):
    """Issue 16, item 4: refused, not split (split batches would not be one transaction)."""
    bulk = {"zone": ZONE, "name": "bulk", "type": "A", "values": ["192.0.2.%d" % n for n in range(1, 202)]}
    proc, (refused, checked) = play(bulk, dict(bulk, max_batch_size=100), check=False)
    for result, limit in ((refused, 200), (checked, 100)):
        assert result.get("failed") and "needs 201 changes (201 posts)" in result["msg"], result
        assert "more than max_batch_size (%d)" % limit in result["msg"] and "nothing was changed" in result["msg"]
    assert server.writes() == [] and values(server, "bulk.example.com", "A") == []
    server.batch_limit = 3500  # a zone on a paid plan
    proc, (applied,) = play(dict(bulk, max_batch_size=3500))
    assert applied["changed"] is True and applied["batch"]["posts"] == 201, applied
    assert len(server.writes()) == 1 and len(values(server, "bulk.example.com", "A")) == 201


def test_batch_rejected_by_cloudflare_changes_nothing(play, server):
    server.add_record(ZONE, "www", "A", "192.0.2.1")
    before = server.get_records(ZONE)
    # TTL 30 is valid for Enterprise zones only: this free zone rejects it, and with it the whole batch.
    proc, (result,) = play({"zone": ZONE, "records": [{"name": "www", "type": "A", "values": ["192.0.2.2"]},
                                                      {"name": "new", "type": "A", "values": ["192.0.2.3"]},
                                                      {"name": "short", "type": "A", "values": ["192.0.2.4"], "ttl": 30}]})
    assert result.get("failed") and "9021" in result["msg"] and "Invalid TTL" in result["msg"], result
    assert result["status"] == 400 and 9021 in result["error_codes"]
    assert len(server.writes()) == 1
    assert server.get_records(ZONE) == before


def test_cname_beside_unmanaged_records_fails_before_writing(play, server):
    server.add_record(ZONE, "www", "A", "192.0.2.1")
    proc, results = play({"zone": ZONE, "name": "www", "type": "CNAME", "values": ["x.example.net"]},
                         {"zone": ZONE, "records": [{"name": "www", "type": "CNAME", "values": ["x.example.net"]},
                                                    {"name": "www", "type": "A", "state": "absent"}]})
    assert results[0].get("failed") and "CNAME cannot be added beside the existing A" in results[0]["msg"]
    assert results[1]["changed"] is True and not results[1].get("failed")
    assert len(server.writes()) == 1
    assert values(server, "www.example.com", "CNAME") == ["x.example.net"]
    assert values(server, "www.example.com", "A") == []


def test_permissions_are_named(run_ansible, tmp_path):
    tokens = {
        "full": {"permissions": ALL_PERMISSIONS},
        "dns-only": {"permissions": {"dns:read", "dns:edit"}},
        "read-only": {"permissions": {"zone:read", "dns:read"}},
    }
    with CloudflareAPIServer(zones=(ZONE,), tokens=tokens) as srv:
        runner = Runner(run_ansible, tmp_path, srv)
        zone_id = srv.zone_id(ZONE)
        task = {"zone": ZONE, "name": "www", "type": "A", "values": ["192.0.2.1"]}
        _proc, (bad, no_zone_read, read_only, with_id, info) = runner(
            dict(task, api_token="not-a-token"),
            dict(task, api_token="dns-only"),
            dict(task, api_token="read-only"),
            dict(task, api_token="dns-only", zone_id=zone_id),
            {"module": INFO, "zone_id": zone_id, "name": "www.example.com", "api_token": "dns-only"},
            token=None)
        requests = srv.requests()
    assert bad["failed"] and bad["status"] == 401 and "rejected the API token" in bad["msg"]
    assert no_zone_read["failed"] and no_zone_read["status"] == 403
    assert "lacks the Zone:Read permission" in no_zone_read["msg"] and "zone_id" in no_zone_read["msg"]
    assert read_only["failed"] and read_only["status"] == 403 and "lacks the DNS:Edit permission" in read_only["msg"]
    assert with_id["changed"] is True and not with_id.get("failed"), with_id
    assert [r["value"] for r in info["records"]] == ["192.0.2.1"]
    # one write went through: the one with zone_id, which made no zone lookup
    writes = [r for r in requests if r["method"] != "GET" and r["status"] == 200]
    assert len(writes) == 1 and writes[0]["bearer"] == "dns-only"
    dns_only = [r["path"] for r in requests if r["bearer"] == "dns-only"]
    assert dns_only.count(API_ZONES) == 1  # only the failed lookup by name
    assert [r["status"] for r in requests if r["bearer"] == "read-only"][-1] == 403


def test_unknown_zone(play, server):
    proc, results = play({"zone": "example.org", "name": "www", "type": "A", "values": ["192.0.2.1"]},
                         {"zone_id": "0" * 32, "name": "www.example.org", "type": "A", "values": ["192.0.2.1"]})
    assert results[0]["failed"] and "Zone example.org was not found" in results[0]["msg"]
    assert results[1]["failed"] and "Zone id %s was not found" % ("0" * 32) in results[1]["msg"]
    assert server.writes() == []


def test_rate_limit_is_retried_after_retry_after(play, server):
    server.rate_limit(2, retry_after=1)
    proc, (result,) = play({"zone": ZONE, "name": "www", "type": "A", "values": ["192.0.2.1"]})
    assert result["changed"] is True and not result.get("failed"), result
    statuses = [r["status"] for r in server.requests()]
    assert statuses.count(429) == 2
    assert server.early_retries == 0, "a retry came before Retry-After had passed"
    assert values(server, "www.example.com", "A") == ["192.0.2.1"]


def test_rate_limit_that_persists_fails_clearly(play, server):
    server.rate_limit(50, retry_after=1)
    proc, (result,) = play({"zone": ZONE, "name": "www", "type": "A", "values": ["192.0.2.1"]}, defaults={"max_retries": 1})
    assert result["failed"] and result["status"] == 429
    assert "rate limited" in result["msg"] and "after 2 attempt(s)" in result["msg"] and "wait 1 s" in result["msg"]
    assert len(server.requests()) == 2 and server.early_retries == 0 and server.writes() == []


def test_server_errors_are_retried_then_fail_clearly(play, server):
    net_id = server.zone_id("example.net")
    server.inject(503, count=1, path_contains="/batch", retry_after=0)
    server.inject(500, count=10, path_contains="/zones/%s/dns_records" % net_id, retry_after=0)
    proc, (ok, failed) = play({"zone": ZONE, "name": "www", "type": "A", "values": ["192.0.2.1"]},
                              {"zone": "example.net", "name": "www", "type": "A", "values": ["192.0.2.2"], "max_retries": 2})
    assert ok["changed"] is True and not ok.get("failed"), ok
    assert [r["status"] for r in batch_requests(server)] == [503, 200]
    assert values(server, "www.example.com", "A") == ["192.0.2.1"]
    assert failed["failed"] and failed["status"] == 500 and "after 3 attempt(s)" in failed["msg"]
    assert len(server.requests(path_contains="/zones/%s/" % net_id)) == 3
    assert server.get_records("example.net") == []


@pytest.mark.parametrize("fault", ["lost-answer", "dropped-connection"])
def test_retried_batch_that_had_been_applied_counts_as_success(play, server, fault):
    server.add_record(ZONE, "www", "A", "192.0.2.1")
    server.add_record(ZONE, "gone", "A", "192.0.2.9")
    if fault == "lost-answer":
        server.inject(500, count=1, path_contains="/batch", apply_first=True, retry_after=0)
    else:
        server.inject(count=1, path_contains="/batch", apply_first=True, drop=True)
    proc, (result,) = play({"zone": ZONE, "records": [{"name": "www", "type": "A", "values": ["192.0.2.2", "192.0.2.3"]},
                                                      {"name": "api", "type": "A", "values": ["192.0.2.4"]},
                                                      {"name": "gone", "type": "A", "state": "absent"}]})
    assert result["changed"] is True and not result.get("failed"), result
    assert any("already applied" in w for w in result.get("warnings", [])), result
    batches = batch_requests(server)
    assert len(batches) == 2 and batches[1]["error_codes"] == [81044]  # the retry met its own work: the delete was done
    assert values(server, "www.example.com", "A") == ["192.0.2.2", "192.0.2.3"]
    assert values(server, "api.example.com", "A") == ["192.0.2.4"]
    assert values(server, "gone.example.com", "A") == []
    assert sorted(r["value"] for r in result["records"]) == ["192.0.2.2", "192.0.2.3", "192.0.2.4"]


def test_identical_record_on_retried_create_counts_as_success(play, server):
    net_id = server.zone_id("example.net")
    server.inject(502, count=1, path_contains="/zones/%s/dns_records/batch" % server.zone_id(ZONE), apply_first=True, retry_after=0)
    # without an earlier attempt of unknown outcome, 81058 is a real conflict and fails
    server.inject(400, count=1, path_contains="/zones/%s/dns_records/batch" % net_id, code=81058,
                  message="An identical record already exists.")
    proc, (result, failed) = play({"zone": ZONE, "name": "www", "type": "A", "values": ["192.0.2.1", "192.0.2.2"]},
                                  {"zone": "example.net", "name": "dup", "type": "A", "values": ["192.0.2.7"]})
    assert result["changed"] is True and not result.get("failed"), result
    first, second = batch_requests(server)[:2]
    assert first["status"] == 502 and second["status"] == 400 and second["error_codes"] == [81058]
    assert values(server, "www.example.com", "A") == ["192.0.2.1", "192.0.2.2"]  # no duplicates
    assert failed["failed"] and 81058 in failed["error_codes"] and "identical record" in failed["msg"]


# ---------------------------------------------------------------------------------------
# Credentials
# ---------------------------------------------------------------------------------------

def test_token_from_environment_and_global_key_variables_ignored(play, server):
    env = {"CLOUDFLARE_API_TOKEN": DEFAULT_TOKEN, "CLOUDFLARE_EMAIL": "someone@example.com",
           "CLOUDFLARE_API_KEY": "global-api-key-0123456789"}
    proc, (result,) = play({"zone": ZONE, "name": "www", "type": "A", "values": ["192.0.2.1"]}, token=None, env=env)
    assert result["changed"] is True and not result.get("failed"), result
    assert server.requests()
    for entry in server.requests():
        assert entry["bearer"] == DEFAULT_TOKEN
        assert entry["x_auth_key"] is None and entry["x_auth_email"] is None


def test_token_appears_in_no_output_at_vvv(play, run_ansible, tmp_path):
    secret = "cfTOKEN-7f3a9c1e-d0-not-print"
    wrong = "cfWRONG-51b2e8aa-d0-not-print"
    with CloudflareAPIServer(zones=(ZONE,), tokens={secret: {"permissions": ALL_PERMISSIONS}}) as srv:
        runner = Runner(run_ansible, tmp_path, srv)
        proc, results = runner(
            {"zone": ZONE, "name": "www", "type": "A", "values": ["192.0.2.1"]},
            {"zone": ZONE, "name": "www", "type": "A", "values": ["192.0.2.2"]},
            {"module": INFO, "zone": ZONE},
            {"zone": ZONE, "name": "api", "type": "A", "values": ["192.0.2.3"], "api_token": wrong},
            {"zone": ZONE, "name": "bad", "type": "A", "values": ["not-an-address"]},
            token=secret, verbosity=3, diff=True)
        assert [bool(r.get("failed")) for r in results] == [False, False, False, True, True]
        assert {entry["bearer"] for entry in srv.requests()} == {secret, wrong}  # both were really used
    output = proc.stdout + proc.stderr
    assert "ESTABLISH LOCAL CONNECTION" in output  # really -vvv
    assert secret not in output
    assert wrong not in output
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in output  # the invocation was printed, masked


# ---------------------------------------------------------------------------------------
# cloudflare_dns_info
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("python", PYTHONS)
def test_info_lists_records_as_compared(play, server, python):
    server.add_record(ZONE, "www", "A", "192.0.2.1", ttl=300)
    server.add_record(ZONE, "www", "AAAA", "2001:0db8::0001")
    server.add_record(ZONE, "@", "TXT", "v=DKIM1; p=" + "A" * 300)
    server.add_record(ZONE, "@", "MX", "mx.example.net", priority=10)
    server.add_record(ZONE, "_sip._tcp", "SRV", data={"priority": 10, "weight": 5, "port": 5060, "target": "sip.example.com"}, ttl=60)
    proc, (all_records, www_a, apex) = play(
        {"module": INFO, "zone": ZONE},
        {"module": INFO, "zone": ZONE, "name": "WWW", "type": "A"},
        {"module": INFO, "zone": ZONE, "name": "@"},
        python=python)
    assert not any(r.get("failed") for r in (all_records, www_a, apex)), all_records
    assert len(all_records["records"]) == 5 and all_records["changed"] is False
    assert [(r["relative_name"], r["type"], r["value"], r["ttl"]) for r in www_a["records"]] == [("www", "A", "192.0.2.1", 300)]
    filtered = server.requests(method="GET", path_contains="/dns_records")[1]
    assert filtered["query"]["name.exact"] == "www.example.com" and filtered["query"]["type"] == "A"
    by_type = {r["type"]: r for r in apex["records"]}
    assert by_type["TXT"]["value"] == "v=DKIM1; p=" + "A" * 300 and by_type["TXT"]["content"].count('" "') == 1
    assert by_type["MX"]["value"] == "10 mx.example.net" and by_type["MX"]["priority"] == 10
    srv_record = [r for r in all_records["records"] if r["type"] == "SRV"][0]
    assert srv_record["value"] == "10 5 5060 sip.example.com" and srv_record["priority"] == 10
    assert [r["value"] for r in all_records["records"] if r["type"] == "AAAA"] == ["2001:db8::1"]
    assert server.writes() == []
    assert_sdk_used(server, python)


# ---------------------------------------------------------------------------------------
# playbooks/dns.yml
# ---------------------------------------------------------------------------------------

def test_dns_playbook_publishes_the_inventory_in_one_batch(run_ansible, server):
    server.add_record(ZONE, "k3s", "A", "192.0.2.99")  # stale API address
    server.add_record(ZONE, "unrelated", "A", "192.0.2.200")

    def run(*extra):
        return run_ansible("ansible-playbook", "infra.k3s.dns", "-i", str(FIXTURES / "inventory.yml"),
                           "-e", json.dumps({"dns_zone": ZONE, "dns_cloudflare_base_url": server.base_url,
                                             "dns_cloudflare_api_token": DEFAULT_TOKEN}), *extra,
                           extra_env=dict(CLEAN_ENV, ANSIBLE_PYTHON_INTERPRETER=sys.executable))

    proc = run()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(server.writes()) == 1
    assert values(server, "master1.example.com", "A") == ["192.0.2.11"]
    assert values(server, "master1.example.com", "AAAA") == ["2001:db8::11"]
    assert values(server, "master2.example.com", "A") == ["192.0.2.12"]
    assert values(server, "edge3.example.com", "A") == ["192.0.2.23"]  # dns_name
    assert values(server, "worker3.example.com", "A") == []
    assert values(server, "k3s.example.com", "A") == ["192.0.2.11", "192.0.2.12"]
    assert values(server, "k3s.example.com", "AAAA") == ["2001:db8::11"]
    assert values(server, "*.apps.example.com", "A") == ["192.0.2.21", "192.0.2.22"]  # dns_ingress true / "yes"
    assert values(server, "*.apps.example.com", "AAAA") == ["2001:db8::22"]
    assert values(server, "unrelated.example.com", "A") == ["192.0.2.200"]
    assert all(rec["ttl"] == 60 for rec in server.get_records(ZONE) if rec["name"] != "unrelated.example.com")

    mark = server.mark()
    proc = run()
    assert proc.returncode == 0 and server.writes(mark) == []
    assert "changed=0" in proc.stdout

    mark = server.mark()
    proc = run("-e", json.dumps({"dns_exclude_hosts": ["master1", "worker2"]}))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(server.writes(mark)) == 1
    assert values(server, "k3s.example.com", "A") == ["192.0.2.12"]
    assert values(server, "k3s.example.com", "AAAA") == []
    assert values(server, "*.apps.example.com", "A") == ["192.0.2.21"]
    assert values(server, "*.apps.example.com", "AAAA") == []
    assert values(server, "master1.example.com", "A") == ["192.0.2.11"]  # excluded node's own name is left alone


@pytest.mark.parametrize("extra, message", [
    ({}, "missing required arguments: dns_zone"),
    ({"dns_zone": ZONE, "dns_ttl": "short"}, "dns_ttl"),
    ({"dns_zone": ZONE, "dns_exclude_hosts": ["master1", "master2.example.com"]}, "no server of k3s_masters is left"),
])
def test_dns_playbook_refuses_bad_input_before_any_request(run_ansible, server, extra, message):
    """The role's argument spec types the inputs and the plan refuses an inventory it cannot publish: nothing is
    asked of Cloudflare (not even the zone lookup)."""
    proc = run_ansible("ansible-playbook", "infra.k3s.dns", "-i", str(FIXTURES / "inventory.yml"),
                       "-e", json.dumps(dict({"dns_cloudflare_base_url": server.base_url,
                                              "dns_cloudflare_api_token": DEFAULT_TOKEN}, **extra)),
                       extra_env=dict(CLEAN_ENV, ANSIBLE_PYTHON_INTERPRETER=sys.executable))
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and message in text, text
    assert server.requests() == []
    assert DEFAULT_TOKEN not in text


def test_dns_playbook_with_no_cluster_host_says_so_before_any_request(run_ansible, server):
    """An inventory without k3s_cluster hosts (none given with -i, or the group misspelt) fails naming that, not
    dns_exclude_hosts, and asks nothing of Cloudflare."""
    proc = run_ansible("ansible-playbook", "infra.k3s.dns", "-i", "localhost,",
                       "-e", json.dumps({"dns_zone": ZONE, "dns_cloudflare_base_url": server.base_url,
                                         "dns_cloudflare_api_token": DEFAULT_TOKEN}),
                       extra_env=dict(CLEAN_ENV, ANSIBLE_PYTHON_INTERPRETER=sys.executable))
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "the inventory has no host in the group k3s_cluster" in text, text
    assert "dns_exclude_hosts" not in text
    assert server.requests() == []


def test_dns_playbook_keeps_the_token_out_of_vvv_output(run_ansible, server):
    """The token reaches the module through the role's variable and its argument validation (spec no_log) and the
    module's api_token (no_log): at -vvv it appears nowhere, on success and on a refusal alike."""
    for extra in ({"dns_zone": ZONE}, {"dns_zone": ZONE, "dns_ttl": "short"}):
        proc = run_ansible("ansible-playbook", "-vvv", "infra.k3s.dns", "-i", str(FIXTURES / "inventory.yml"),
                           "-e", json.dumps(dict({"dns_cloudflare_base_url": server.base_url,
                                                  "dns_cloudflare_api_token": DEFAULT_TOKEN}, **extra)),
                           extra_env=dict(CLEAN_ENV, ANSIBLE_PYTHON_INTERPRETER=sys.executable))
        text = proc.stdout + proc.stderr
        assert "ESTABLISH LOCAL CONNECTION" in text or "Validation of arguments failed" in text, text  # really ran
        assert DEFAULT_TOKEN not in text
