"""infra.k3s.r2_bucket, run by ansible-playbook against moto's S3 server on loopback.

The server checks signatures (moto's IAM auth is switched on once an IAM user with S3 rights and its
access key exist), so wrong keys are refused the way R2 refuses them: InvalidAccessKeyId /
SignatureDoesNotMatch. The module talks to it through the R2 stand-in's strict layer (tests/standins/r2/),
which refuses the lifecycle requests R2 refuses (flexible-checksum headers, no Content-MD5, DeleteBucketLifecycle).
"""
from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/
from standins.r2 import R2  # noqa: E402

MODULE = "infra.k3s.r2_bucket"
CLEAN_ENV = {"R2_ACCESS_KEY_ID": "", "R2_SECRET_ACCESS_KEY": "", "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
             "AWS_SESSION_TOKEN": "", "AWS_ENDPOINT_URL": "", "AWS_PROFILE": ""}


@pytest.fixture(scope="module")
def s3():
    store = R2()  # moto checking signatures, with R2's refusals in front (tests/standins/r2/server.py)
    yield store
    store.stop()


class Runner(object):
    """Writes a playbook of r2_bucket tasks, runs it, returns (process, registered results)."""

    def __init__(self, run_ansible, tmp_path, s3):
        self.run_ansible, self.tmp_path, self.s3 = run_ansible, tmp_path, s3
        self.count = 0

    def __call__(self, *tasks, check=False, diff=False, verbosity=0, keys=None, env=None):
        self.count += 1
        key_id, secret = keys or (self.s3.key_id, self.s3.secret)
        plays = []
        for index, args in enumerate(tasks):
            args = dict(args)
            args.setdefault("endpoint_url", self.s3.strict.url)
            args.setdefault("region", "us-east-1")
            args.setdefault("access_key_id", "{{ r2_key_id }}")
            args.setdefault("secret_access_key", "{{ r2_secret }}")
            args = {key: value for key, value in args.items() if value is not None}  # None: leave the option out
            plays.append({"name": "task %d" % index, MODULE: args, "register": "r%d" % index, "ignore_errors": True})
        plays.append({"name": "save results",
                      "ansible.builtin.debug": {"msg": "{{ [%s] | to_json }}" % ", ".join("r%d" % i for i in range(len(tasks)))}})
        play = [{"name": "r2", "hosts": "localhost", "connection": "local", "gather_facts": False,
                 "vars": {"r2_key_id": key_id, "r2_secret": secret}, "tasks": plays}]
        path = self.tmp_path / ("play-%d.yml" % self.count)
        path.write_text(json.dumps(play, indent=1))
        args = ["-i", "localhost,", str(path)]
        if check:
            args.append("--check")
        if diff:
            args.append("--diff")
        if verbosity:
            args.append("-" + "v" * verbosity)
        extra = dict(CLEAN_ENV)
        extra.update(env or {})
        proc = self.run_ansible("ansible-playbook", *args, extra_env=extra)
        marker = proc.stdout.rfind("TASK [save results]")
        assert marker >= 0, proc.stdout + proc.stderr
        start = proc.stdout.index("{", proc.stdout.index("ok: [localhost]", marker))
        printed, unused = json.JSONDecoder().raw_decode(proc.stdout, start)
        return proc, json.loads(printed["msg"])


@pytest.fixture
def play(run_ansible, tmp_path, s3):
    return Runner(run_ansible, tmp_path, s3)


def plain(rules):
    return sorted((r["ID"], (r.get("Filter") or {}).get("Prefix"), r["Status"], (r.get("Expiration") or {}).get("Days"),
                   (r.get("AbortIncompleteMultipartUpload") or {}).get("DaysAfterInitiation")) for r in rules)


RULES = [{"id": "expire-backups", "prefix": "backups/", "expiration_days": 60},
         {"id": "abort-multipart", "abort_multipart_days": 7}]


def test_create_idempotent_lifecycle_changes(play, s3):
    proc, (created,) = play({"name": "r2test-a", "lifecycle_rules": RULES})
    assert not created.get("failed"), created
    assert created["changed"] is True and created["created"] is True
    assert "r2test-a" in s3.buckets()
    assert plain(s3.rules("r2test-a")) == [("abort-multipart", "", "Enabled", None, 7), ("expire-backups", "backups/", "Enabled", 60, None)]
    assert [r["id"] for r in created["lifecycle_rules"]] == ["abort-multipart", "expire-backups"]

    proc, (again,) = play({"name": "r2test-a", "lifecycle_rules": list(reversed(RULES))})
    assert again["changed"] is False, again
    assert again["created"] is False

    # change one rule, disable the other
    changed_rules = [dict(RULES[0], expiration_days=30), dict(RULES[1], enabled=False)]
    proc, (changed,) = play({"name": "r2test-a", "lifecycle_rules": changed_rules}, diff=True)
    assert changed["changed"] is True
    assert plain(s3.rules("r2test-a")) == [("abort-multipart", "", "Disabled", None, 7), ("expire-backups", "backups/", "Enabled", 30, None)]
    assert changed["diff"]["before"]["lifecycle_rules"][1]["expiration_days"] == 60
    assert changed["diff"]["after"]["lifecycle_rules"][1]["expiration_days"] == 30
    assert "expiration_days" in proc.stdout  # the diff is printed

    # add without purge keeps the others
    proc, (added,) = play({"name": "r2test-a", "purge_lifecycle_rules": False,
                           "lifecycle_rules": [{"id": "tmp", "prefix": "tmp/", "expiration_days": 1}]})
    assert added["changed"] is True and len(s3.rules("r2test-a")) == 3
    proc, (added_again,) = play({"name": "r2test-a", "purge_lifecycle_rules": False,
                                 "lifecycle_rules": [{"id": "tmp", "prefix": "tmp/", "expiration_days": 1}]})
    assert added_again["changed"] is False

    # rules not given: left alone
    proc, (untouched,) = play({"name": "r2test-a"})
    assert untouched["changed"] is False and len(untouched["lifecycle_rules"]) == 3

    # remove one (purge): a Put with the rule that remains, never DeleteBucketLifecycle (the strict layer refuses it)
    proc, (removed,) = play({"name": "r2test-a", "lifecycle_rules": [RULES[0]]})
    assert not removed.get("failed"), removed
    assert removed["changed"] is True and plain(s3.rules("r2test-a")) == [("expire-backups", "backups/", "Enabled", 60, None)]
    # R2 lists no call that removes the last rule: refused before anything is sent, the rule stays
    proc, (cleared,) = play({"name": "r2test-a", "lifecycle_rules": []})
    assert cleared["failed"] is True and "Refusing to remove every lifecycle rule of bucket r2test-a" in cleared["msg"], cleared
    assert "DeleteBucketLifecycle is not in R2's S3 compatibility table" in cleared["msg"]
    assert plain(s3.rules("r2test-a")) == [("expire-backups", "backups/", "Enabled", 60, None)]
    # the same for a new bucket (R2 gives it a rule of its own): refused before the bucket is made
    proc, (new_cleared,) = play({"name": "r2test-a-new", "lifecycle_rules": []})
    assert new_cleared["failed"] is True and "r2test-a-new" not in s3.buckets(), new_cleared
    # with purge_lifecycle_rules=false an empty list changes nothing
    proc, (kept,) = play({"name": "r2test-a", "lifecycle_rules": [], "purge_lifecycle_rules": False})
    assert kept["changed"] is False and len(s3.rules("r2test-a")) == 1

    # every lifecycle write R2 got: Content-MD5 of the body, no flexible-checksum header, no DELETE
    writes = [(method, headers) for method, query, headers in s3.strict.seen if method != "GET"]
    assert writes and all(method == "PUT" for method, headers in writes), [w[0] for w in writes]
    for method, headers in writes:
        assert "content-md5" in headers, headers
        assert not [h for h in headers if h.startswith("x-amz-checksum-") or h == "x-amz-sdk-checksum-algorithm"], headers


@pytest.mark.parametrize("velero_prefix,rule,refused", [
    ("", {"id": "x", "prefix": "", "expiration_days": 60}, True),                    # the whole bucket
    ("", {"id": "x", "prefix": "kopia/", "expiration_days": 60}, True),
    ("", {"id": "x", "prefix": "backups/", "expiration_days": 60}, False),
    ("k3s", {"id": "x", "prefix": "k3s/", "expiration_days": 60}, True),             # docs/backups.md's old example
    ("k3s/", {"id": "x", "prefix": "k3s/kopia/velero/", "expiration_days": 60}, True),
    ("k3s", {"id": "x", "prefix": "k3s/backups/", "expiration_days": 60}, False),
    ("k3s", {"id": "x", "prefix": "", "abort_multipart_days": 7}, False),           # aborts uploads, deletes no object
    ("k3s", {"id": "x", "prefix": "", "expiration_days": 60, "enabled": False}, False),
], ids=["root-all", "root-kopia", "root-backups", "prefix-all", "inside-kopia", "prefix-backups", "abort-only", "disabled"])
def test_expiry_never_covers_kopia(play, s3, velero_prefix, rule, refused):
    bucket = "r2test-kopia-" + secrets.token_hex(3)
    proc, (result,) = play({"name": bucket, "velero_prefix": velero_prefix, "lifecycle_rules": [rule]})
    if refused:
        assert result["failed"] is True and "Velero's Kopia repository" in result["msg"], result
        assert "nothing was sent" in result["msg"] and bucket not in s3.buckets()
        proc, (allowed,) = play({"name": bucket, "velero_prefix": velero_prefix, "allow_kopia_expiry": True,
                                 "lifecycle_rules": [rule]})
        assert not allowed.get("failed"), allowed
    else:
        assert not result.get("failed"), result
    assert [r["ID"] for r in s3.rules(bucket)] == ["x"]


def test_check_mode_changes_nothing(play, s3):
    proc, (checked,) = play({"name": "r2test-check", "lifecycle_rules": RULES}, check=True, diff=True)
    assert not checked.get("failed"), checked
    assert checked["changed"] is True and checked["created"] is True
    assert "r2test-check" not in s3.buckets()
    assert checked["diff"]["before"]["exists"] is False and checked["diff"]["after"]["exists"] is True

    s3.client.create_bucket(Bucket="r2test-check2")
    proc, (checked,) = play({"name": "r2test-check2", "lifecycle_rules": RULES}, check=True)
    assert checked["changed"] is True and s3.rules("r2test-check2") == []
    proc, (gone,) = play({"name": "r2test-check2", "state": "absent"}, check=True)
    assert gone["changed"] is True and "r2test-check2" in s3.buckets()


def test_absent(play, s3):
    s3.client.create_bucket(Bucket="r2test-full")
    s3.client.put_object(Bucket="r2test-full", Key="backups/one/velero-backup.json", Body=b"{}")
    s3.client.put_object(Bucket="r2test-full", Key="backups/two/velero-backup.json", Body=b"{}")
    proc, (refused,) = play({"name": "r2test-full", "state": "absent"})
    assert refused["failed"] is True and "not empty" in refused["msg"] and "force" in refused["msg"]
    assert "r2test-full" in s3.buckets()

    proc, (forced,) = play({"name": "r2test-full", "state": "absent", "force": True}, diff=True)
    assert forced["changed"] is True and forced["deleted_objects"] == 2
    assert "r2test-full" not in s3.buckets()
    proc, (again,) = play({"name": "r2test-full", "state": "absent"})
    assert again["changed"] is False

    s3.client.create_bucket(Bucket="r2test-empty")
    proc, (empty,) = play({"name": "r2test-empty", "state": "absent"})
    assert empty["changed"] is True and "r2test-empty" not in s3.buckets()


def test_bad_input_is_rejected_before_any_request(play):
    proc, (bad_name, no_endpoint, bad_account, dup, no_action) = play(
        {"name": "Bad_Name"},
        {"name": "r2test-x", "endpoint_url": None, "account_id": None},
        {"name": "r2test-x", "endpoint_url": None, "account_id": "not-an-account"},
        {"name": "r2test-x", "lifecycle_rules": [{"id": "a", "expiration_days": 1}, {"id": "a", "expiration_days": 2}]},
        {"name": "r2test-x", "lifecycle_rules": [{"id": "a"}]},
    )
    assert "bucket name 'Bad_Name' is invalid" in bad_name["msg"]
    assert "account_id" in no_endpoint["msg"] and "endpoint_url" in no_endpoint["msg"]
    assert "not a Cloudflare account id" in bad_account["msg"]
    assert "given twice" in dup["msg"]
    assert "needs expiration_days or abort_multipart_days" in no_action["msg"]


def test_account_id_makes_the_r2_endpoint(play, s3):
    account = "0123456789abcdef0123456789abcdef"
    proc, (result,) = play({"name": "r2test-acct", "endpoint_url": None, "account_id": account, "timeout": 1}, check=True)
    # No network here: the endpoint it tried is the account's R2 endpoint.
    assert result.get("endpoint_url") == "https://%s.r2.cloudflarestorage.com" % account or \
        "https://%s.r2.cloudflarestorage.com" % account in result.get("msg", ""), result


def test_bad_keys_are_refused_and_never_shown(play, s3):
    wrong_secret = "WrongSecretValue0123456789abcdefSECRET"
    proc, (wrong, unknown) = play({"name": "r2test-a"},
                                  {"name": "r2test-a", "access_key_id": "AKIAUNKNOWNKEY123456"},
                                  keys=(s3.key_id, wrong_secret), verbosity=3)
    assert wrong["failed"] is True and "refused the credentials" in wrong["msg"], wrong
    assert "SignatureDoesNotMatch" in wrong["msg"]
    assert unknown["failed"] is True and "InvalidAccessKeyId" in unknown["msg"], unknown
    output = proc.stdout + proc.stderr
    for secret in (wrong_secret, s3.key_id, "AKIAUNKNOWNKEY123456"):
        assert secret not in output


def test_keys_from_environment_and_not_in_verbose_output(play, s3):
    proc, (result,) = play({"name": "r2test-env", "access_key_id": None, "secret_access_key": None,
                            "lifecycle_rules": RULES}, verbosity=3, diff=True,
                           env={"R2_ACCESS_KEY_ID": s3.key_id, "R2_SECRET_ACCESS_KEY": s3.secret})
    assert not result.get("failed"), result
    assert result["changed"] is True and "r2test-env" in s3.buckets()
    output = proc.stdout + proc.stderr
    assert s3.key_id not in output and s3.secret not in output

    proc, (aws_env,) = play({"name": "r2test-env", "access_key_id": None, "secret_access_key": None}, verbosity=3,
                            env={"AWS_ACCESS_KEY_ID": s3.key_id, "AWS_SECRET_ACCESS_KEY": s3.secret})
    assert aws_env["changed"] is False, aws_env
    proc, (passed,) = play({"name": "r2test-env"}, verbosity=3)
    assert passed["changed"] is False
    output = proc.stdout + proc.stderr
    assert s3.key_id not in output and s3.secret not in output
