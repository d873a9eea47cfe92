"""Unit tests of plugins/module_utils/cloudflare_{records,plan,client,runners}.py: normalisation, validation, planning, retries, client."""
from __future__ import annotations

import httpx
import pytest

import cloudflare as cloudflare_sdk
from support.module_utils import load_module_utils_family

cf = load_module_utils_family("cloudflare_records", "cloudflare_plan", "cloudflare_client", "cloudflare_runners")
ZONE = "example.com"


def params(**kwargs):
    base = dict(name=None, type=None, values=None, priority=None, ttl=None, proxied=None, comment=None, tags=None,
                state="present", exclusive=True, records=None, max_batch_size=200)
    base.update(kwargs)
    return base


def rec(name, rtype, content, rid=None, ttl=1, proxied=False, comment=None, tags=None, priority=None, data=None,
        settings=None, private_routing=None):
    record = {"id": rid or "%s-%s-%s" % (name, rtype, content), "name": name, "type": rtype, "content": content,
              "ttl": ttl, "proxied": proxied, "comment": comment, "tags": tags or [], "settings": settings or {}}
    if private_routing is not None:
        record["private_routing"] = private_routing
    if priority is not None:
        record["priority"] = priority
    if data is not None:
        record["data"] = data
    return record


def one_set(**kwargs):
    return cf.build_record_sets(params(**kwargs), ZONE)


# ---------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("given,expected", [
    ("www", "www.example.com"),
    ("WWW", "www.example.com"),
    ("@", "example.com"),
    ("example.com", "example.com"),
    ("Example.COM.", "example.com"),
    ("www.example.com", "www.example.com"),
    ("www.example.com.", "www.example.com"),
    ("*.apps", "*.apps.example.com"),
    ("_acme-challenge.k3s", "_acme-challenge.k3s.example.com"),
    ("www.example", "www.example.example.com"),  # relative: does not end in the zone
])
def test_fqdn(given, expected):
    assert cf.fqdn(given, ZONE) == expected


def test_fqdn_rejects_absolute_name_outside_zone():
    with pytest.raises(cf.InvalidInput, match="not in zone"):
        cf.fqdn("www.example.org.", ZONE)


def test_fqdn_without_zone_name_takes_names_as_fqdn_and_refuses_apex():
    assert cf.fqdn("WWW.Example.com.", None) == "www.example.com"
    with pytest.raises(cf.InvalidInput, match="needs the zone name"):
        cf.fqdn("@", None)


def test_idn_names_are_punycode():
    assert cf.fqdn("bücher", ZONE) == "xn--bcher-kva.example.com"


@pytest.mark.parametrize("content,value", [
    ('"v=spf1 -all"', "v=spf1 -all"),
    ("v=spf1 -all", "v=spf1 -all"),
    ('"abc" "def"', "abcdef"),
    ('"abc""def"', "abcdef"),
    ('"say \\"hi\\""', 'say "hi"'),
    ('"back\\\\slash"', "back\\slash"),
    ('"\\065BC"', "ABC"),
    ('"unterminated', '"unterminated'),
])
def test_txt_value(content, value):
    assert cf.txt_value(content) == value


def test_txt_content_quotes_and_splits_at_255_bytes():
    long = "k=" + "x" * 600
    content = cf.txt_content(long)
    strings = cf.txt_strings(content)
    assert [len(s.encode()) for s in strings] == [255, 255, 92]
    assert content.startswith('"k=xxx') and '" "' in content
    assert cf.txt_value(content) == long
    assert cf.txt_content('say "hi"') == '"say \\"hi\\""'
    # multi-byte characters are never cut in half
    assert all(len(s.encode()) <= 255 for s in cf.txt_strings(cf.txt_content("é" * 200)))


def test_multi_string_txt_is_kept_as_written_and_compared_as_stored():
    # "a" "b" is two character-strings: sent as written, not joined into "ab" (issue 16, item 3)
    desired = cf.desired_record("TXT", '"a" "b"')
    assert desired.payload() == {"content": '"a" "b"'}
    assert desired.key == '"a" "b"' and desired.key != cf.desired_record("TXT", "ab").key
    # Cloudflare stores TXT content as sent; equal strings are equal records whatever the quoting
    assert cf.existing_key(rec("t.example.com", "TXT", '"a"   "b"')) == desired.key
    assert cf.existing_key(rec("t.example.com", "TXT", "v=spf1 -all")) == cf.desired_record("TXT", "v=spf1 -all").key
    assert cf.existing_key(rec("t.example.com", "TXT", '"v=spf1 " "-all"')) != cf.desired_record("TXT", "v=spf1 -all").key
    # a string over 255 bytes is split by Cloudflare, so a long text and its 255-byte split are one record
    long = "p=" + "A" * 300
    assert cf.desired_record("TXT", '"%s" "%s"' % (long[:255], long[255:])).key == cf.desired_record("TXT", long).key == long
    # a string that merely starts with a quote is not mistaken for strings
    assert cf.desired_record("TXT", '"\\"a\\" \\"b\\""').key != desired.key
    existing = [rec("example.com", "TXT", '"v=spf1 " "-all"', rid="t1")]
    plan = cf.plan_changes(one_set(name="@", type="TXT", values=["v=spf1 -all"]), existing)
    assert plan.puts == [{"id": "t1", "name": "example.com", "type": "TXT", "ttl": 1, "content": '"v=spf1 -all"'}]
    plan = cf.plan_changes(one_set(name="@", type="TXT", values=['"v=spf1 " "-all"']), existing)
    assert plan.empty


def test_txt_quoted_split_and_plain_forms_compare_equal():
    value = "v=DKIM1; k=rsa; p=" + "A" * 400
    desired = cf.desired_record("TXT", value)
    returned = rec("example.com", "TXT", cf.txt_content(value))
    assert cf.existing_key(returned) == desired.key
    assert cf.desired_record("TXT", '"%s"' % value).key == desired.key


def test_ipv6_forms_compare_equal():
    assert cf.desired_record("AAAA", "2001:DB8:0:0:0:0:0:1").key == "2001:db8::1"
    assert cf.existing_key(rec("a.example.com", "AAAA", "2001:0db8::0001")) == "2001:db8::1"


def test_targets_ignore_case_and_trailing_dot():
    assert cf.desired_record("CNAME", "Target.Example.NET.").key == "target.example.net"
    assert cf.existing_key(rec("x.example.com", "CNAME", "target.example.net")) == "target.example.net"
    assert cf.desired_record("MX", "10 MX.Example.net.").key == "10 mx.example.net"
    assert cf.existing_key(rec("example.com", "MX", "mx.example.net", priority=10)) == "10 mx.example.net"


def test_mx_priority_from_option_or_value():
    assert cf.desired_record("MX", "mx.example.net", priority=5).payload() == {"content": "mx.example.net", "priority": 5}
    with pytest.raises(cf.InvalidInput, match="needs a preference"):
        cf.desired_record("MX", "mx.example.net")


def test_srv_value_and_data():
    desired = cf.desired_record("SRV", "10 5 5060 SIP.example.com.")
    assert desired.payload() == {"data": {"priority": 10, "weight": 5, "port": 5060, "target": "sip.example.com"}}
    assert cf.desired_record("SRV", "5 5060 sip.example.com", priority=10).key == desired.key
    # Cloudflare returns data, and content as weight/port/target with the priority apart
    returned = rec("_sip._tcp.example.com", "SRV", "5\t5060\tsip.example.com", priority=10,
                   data={"priority": 10, "weight": 5, "port": 5060, "target": "sip.example.com"})
    assert cf.existing_key(returned) == desired.key
    no_data = rec("_sip._tcp.example.com", "SRV", "5 5060 sip.example.com", priority=10)
    assert cf.existing_key(no_data) == desired.key


def test_caa_value_and_data():
    desired = cf.desired_record("CAA", '0 ISSUE "letsencrypt.org"')
    assert desired.payload() == {"data": {"flags": 0, "tag": "issue", "value": "letsencrypt.org"}}
    assert cf.desired_record("CAA", "0 issue letsencrypt.org").key == desired.key
    returned = rec("example.com", "CAA", '0 issue "letsencrypt.org"', data={"flags": 0, "tag": "issue", "value": "letsencrypt.org"})
    assert cf.existing_key(returned) == desired.key
    with pytest.raises(cf.InvalidInput, match="CAA tag"):
        cf.desired_record("CAA", "0 bogus x")


# ---------------------------------------------------------------------------------------
# Validation before any request
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,message", [
    (dict(name="www", type="A", values=["192.0.2.300"]), "not an IPv4 address"),
    (dict(name="www", type="A", values=["2001:db8::1"]), "not an IPv4 address"),
    (dict(name="www", type="AAAA", values=["192.0.2.1"]), "not an IPv6 address"),
    (dict(name="www", type="CNAME", values=["a.example.net", "b.example.net"]), "exactly one value"),
    (dict(name="www", type="CNAME", values=["192.0.2.1"]), "not an IP address"),
    (dict(name="www", type="A", values=["192.0.2.1"], ttl=10), "ttl 10 is out of range"),
    (dict(name="www", type="A", values=["192.0.2.1"], ttl=86401), "out of range"),
    (dict(name="www", type="TXT", values=["x"], proxied=True), "can be proxied"),
    (dict(name="www", type="A", values=["192.0.2.1"], proxied=True, ttl=300), "automatic TTL"),
    (dict(name="www", type="A", values=[]), "values is required"),
    (dict(name="www", type="A", values=["192.0.2.1"], priority=10), "priority applies"),
    (dict(name="sip", type="SRV", values=["10 5 5060 sip.example.com"]), "_service._proto"),
    (dict(name="bad name", type="A", values=["192.0.2.1"]), "invalid label"),
    (dict(name="www", type="A", values=["192.0.2.1"], tags=["team:web", "nocolon"]), "tag 'nocolon' is not name:value"),
    (dict(name="www", type="A", values=["192.0.2.1"], tags=["bad name:x"]), "is not name:value"),
    (dict(name="www", type="A", values=["192.0.2.1"], tags=[":x"]), "is not name:value"),
    (dict(name="www", type="A", values=["192.0.2.1"], tags=["team:two\nlines"]), "is not name:value"),
    (dict(records=[dict(name="www", type="A", values=["192.0.2.1"], tags=["x"])]), r"records\[0\].*is not name:value"),
])
def test_invalid_input_is_rejected(kwargs, message):
    with pytest.raises(cf.InvalidInput, match=message):
        one_set(**kwargs)


def test_valid_tags_pass():
    (rset,) = one_set(name="www", type="A", values=["192.0.2.1"], tags=["team:web", "Owner_1-x:a b: c", "empty:"])
    assert rset.tags == ["Owner_1-x:a b: c", "empty:", "team:web"]


def test_cname_beside_other_types_is_rejected_unless_they_go_away():
    records = [dict(name="www", type="CNAME", values=["x.example.net"]), dict(name="WWW.example.com", type="A", values=["192.0.2.1"])]
    with pytest.raises(cf.InvalidInput, match="CNAME beside other types"):
        cf.build_record_sets(params(records=records), ZONE)
    records[1]["state"] = "absent"
    assert len(cf.build_record_sets(params(records=records), ZONE)) == 2


def test_cname_at_the_apex_may_sit_beside_other_types():
    records = [dict(name="@", type="CNAME", values=["pages.example.net"]), dict(name="@", type="MX", values=["10 mx.example.net"])]
    sets = cf.build_record_sets(params(records=records), ZONE)
    existing = [rec("example.com", "TXT", '"v=spf1 -all"')]
    assert not cf.plan_changes(sets, existing, ZONE).conflicts


def test_same_name_and_type_twice_is_rejected():
    records = [dict(name="www", type="A", values=["192.0.2.1"]), dict(name="www.example.com.", type="A", values=["192.0.2.2"])]
    with pytest.raises(cf.InvalidInput, match="both describe www.example.com A"):
        cf.build_record_sets(params(records=records), ZONE)


def test_records_inherit_top_level_defaults():
    sets = cf.build_record_sets(params(ttl=300, comment="c", records=[
        dict(name="a", type="A", values=["192.0.2.1"]),
        dict(name="b", type="A", values=["192.0.2.2"], ttl=60, comment=""),
    ]), ZONE)
    assert [(s.ttl, s.comment) for s in sets] == [(300, "c"), (60, "")]


def test_duplicate_values_after_normalisation_are_one_record():
    (rset,) = one_set(name="www", type="AAAA", values=["2001:db8::1", "2001:DB8:0::1"])
    assert [v.key for v in rset.values] == ["2001:db8::1"]


# ---------------------------------------------------------------------------------------
# Planning
# ---------------------------------------------------------------------------------------

def test_plan_creates_missing_records():
    plan = cf.plan_changes(one_set(name="www", type="A", values=["192.0.2.1", "192.0.2.2"], ttl=300), [])
    assert plan.counts() == {"deletes": 0, "patches": 0, "puts": 0, "posts": 2}
    assert plan.posts[0] == {"name": "www.example.com", "type": "A", "ttl": 300, "content": "192.0.2.1", "proxied": False}


def test_plan_is_empty_when_records_match_in_another_form():
    existing = [rec("www.example.com", "AAAA", "2001:db8::1"), rec("example.com", "TXT", '"v=spf1 -all"')]
    sets = cf.build_record_sets(params(records=[
        dict(name="WWW.example.com.", type="AAAA", values=["2001:0DB8::0:1"]),
        dict(name="@", type="TXT", values=["v=spf1 -all"]),
    ]), ZONE)
    plan = cf.plan_changes(sets, existing)
    assert plan.empty
    assert cf.plan_diff(plan) == []


def test_value_change_reuses_the_record_with_put():
    existing = [rec("www.example.com", "A", "192.0.2.1", rid="r1", comment="keep", tags=["team:web"])]
    plan = cf.plan_changes(one_set(name="www", type="A", values=["192.0.2.9"]), existing)
    assert plan.counts() == {"deletes": 0, "patches": 0, "puts": 1, "posts": 0}
    put = plan.puts[0]
    assert put["id"] == "r1" and put["content"] == "192.0.2.9"
    # comment and tags were not managed: the PUT keeps them
    assert put["comment"] == "keep" and put["tags"] == ["team:web"]


def test_value_change_keeps_settings_private_routing_ttl_and_proxied():
    # A PUT replaces the whole record: what the task does not manage is carried over (issue 16, item 2)
    existing = [rec("www.example.com", "A", "192.0.2.1", rid="r1", proxied=True, settings={"ipv4_only": True},
                    private_routing=True),
                rec("c.example.com", "CNAME", "old.example.net", rid="r2", ttl=300, settings={"flatten_cname": True})]
    sets = cf.build_record_sets(params(records=[dict(name="www", type="A", values=["192.0.2.9"]),
                                                dict(name="c", type="CNAME", values=["new.example.net"])]), ZONE)
    plan = cf.plan_changes(sets, existing)
    assert plan.puts == [
        {"id": "r1", "name": "www.example.com", "type": "A", "ttl": 1, "content": "192.0.2.9", "proxied": True,
         "settings": {"ipv4_only": True}, "private_routing": True},
        {"id": "r2", "name": "c.example.com", "type": "CNAME", "ttl": 300, "content": "new.example.net", "proxied": False,
         "settings": {"flatten_cname": True}},
    ]
    assert [(v["ttl"], v["proxied"], v["settings"]) for v in plan.updated] == [
        (1, True, {"ipv4_only": True}), (300, False, {"flatten_cname": True})]
    # what the task sets wins over what the record had
    sets = cf.build_record_sets(params(records=[dict(name="c", type="CNAME", values=["new.example.net"], ttl=60)]), ZONE)
    (put,) = cf.plan_changes(sets, existing).puts
    assert put["ttl"] == 60 and put["settings"] == {"flatten_cname": True}


def test_ttl_and_proxied_are_left_alone_when_not_set():
    existing = [rec("www.example.com", "A", "192.0.2.1", rid="r1", ttl=300),
                rec("p.example.com", "A", "192.0.2.2", rid="r2", proxied=True)]
    sets = cf.build_record_sets(params(records=[dict(name="www", type="A", values=["192.0.2.1"]),
                                                dict(name="p", type="A", values=["192.0.2.2"])]), ZONE)
    assert cf.plan_changes(sets, existing).empty
    # new records: automatic TTL, not proxied
    (post,) = cf.plan_changes(one_set(name="new", type="A", values=["192.0.2.3"]), existing).posts
    assert post["ttl"] == 1 and post["proxied"] is False
    # proxying a record makes its TTL automatic; a TTL for a record that stays proxied is refused
    plan = cf.plan_changes(one_set(name="www", type="A", values=["192.0.2.1"], proxied=True), existing)
    assert plan.patches == [{"id": "r1", "name": "www.example.com", "type": "A", "ttl": 1, "proxied": True}]
    plan = cf.plan_changes(one_set(name="p", type="A", values=["192.0.2.2"], ttl=300), existing)
    assert plan.conflicts and "is proxied, so its TTL is automatic" in plan.conflicts[0]
    plan = cf.plan_changes(one_set(name="p", type="A", values=["192.0.2.2"], ttl=300, proxied=False), existing)
    assert not plan.conflicts and plan.patches == [{"id": "r2", "name": "p.example.com", "type": "A", "ttl": 300, "proxied": False}]


def test_tag_names_compare_without_case():
    existing = [rec("www.example.com", "A", "192.0.2.1", rid="r1", tags=["team:Web"])]
    assert cf.plan_changes(one_set(name="www", type="A", values=["192.0.2.1"], tags=["TEAM:Web"]), existing).empty
    assert not cf.plan_changes(one_set(name="www", type="A", values=["192.0.2.1"], tags=["team:web"]), existing).empty


def test_more_changes_than_one_batch_allows_are_refused():
    sets = one_set(name="bulk", type="A", values=["192.0.2.%d" % n for n in range(1, 202)])
    plan = cf.plan_changes(sets, [])
    message = cf.batch_too_large(plan, 200)
    assert "needs 201 changes" in message and "max_batch_size (200)" in message and "nothing was changed" in message
    assert cf.batch_too_large(plan, 3500) is None
    assert cf.batch_too_large(cf.plan_changes(sets[:1], []), 201) is None
    assert cf.check_batch_size(3500) == 3500
    for bad in (0, 3501):
        with pytest.raises(cf.InvalidInput, match="max_batch_size"):
            cf.check_batch_size(bad)


def test_exclusive_removes_extra_values_and_non_exclusive_keeps_them():
    existing = [rec("www.example.com", "A", "192.0.2.1", rid="r1"), rec("www.example.com", "A", "192.0.2.2", rid="r2")]
    plan = cf.plan_changes(one_set(name="www", type="A", values=["192.0.2.1"]), existing)
    assert plan.deletes == [{"id": "r2"}] and not plan.posts and not plan.puts
    plan = cf.plan_changes(one_set(name="www", type="A", values=["192.0.2.1", "192.0.2.3"], exclusive=False), existing)
    assert plan.counts() == {"deletes": 0, "patches": 0, "puts": 0, "posts": 1}
    assert sorted(v["value"] for v in plan.sets[0][2]) == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]


def test_proxied_change_is_a_patch():
    existing = [rec("www.example.com", "A", "192.0.2.1", rid="r1")]
    plan = cf.plan_changes(one_set(name="www", type="A", values=["192.0.2.1"], proxied=True), existing)
    assert plan.patches == [{"id": "r1", "name": "www.example.com", "type": "A", "ttl": 1, "proxied": True}]
    assert plan.updated[0]["proxied"] is True and not plan.posts and not plan.puts


def test_patch_fields():
    existing = [rec("www.example.com", "A", "192.0.2.1", rid="r1", ttl=300, comment="old")]
    plan = cf.plan_changes(one_set(name="www", type="A", values=["192.0.2.1"], ttl=60, comment="new"), existing)
    assert plan.patches == [{"id": "r1", "name": "www.example.com", "type": "A", "ttl": 60, "comment": "new"}]
    # an unmanaged comment (None) is not a difference
    plan = cf.plan_changes(one_set(name="www", type="A", values=["192.0.2.1"], ttl=300), existing)
    assert plan.empty


def test_absent_removes_all_or_listed_values():
    existing = [rec("old.example.com", "A", "192.0.2.1", rid="r1"), rec("old.example.com", "A", "192.0.2.2", rid="r2")]
    plan = cf.plan_changes(one_set(name="old", type="A", state="absent"), existing)
    assert plan.deletes == [{"id": "r1"}, {"id": "r2"}]
    plan = cf.plan_changes(one_set(name="old", type="A", state="absent", values=["192.0.2.2"]), existing)
    assert plan.deletes == [{"id": "r2"}]
    assert cf.plan_changes(one_set(name="gone", type="A", state="absent"), existing).empty


def test_plan_spots_cname_conflicts_with_unmanaged_records():
    existing = [rec("www.example.com", "A", "192.0.2.1")]
    plan = cf.plan_changes(one_set(name="www", type="CNAME", values=["x.example.net"]), existing)
    assert plan.conflicts and "CNAME cannot be added beside" in plan.conflicts[0]
    sets = cf.build_record_sets(params(records=[dict(name="www", type="CNAME", values=["x.example.net"]),
                                                dict(name="www", type="A", state="absent")]), ZONE)
    plan = cf.plan_changes(sets, existing)
    assert not plan.conflicts and plan.counts() == {"deletes": 1, "patches": 0, "puts": 0, "posts": 1}


def test_plan_diff_shows_before_and_after_per_set():
    existing = [rec("www.example.com", "A", "192.0.2.1", rid="r1")]
    sets = cf.build_record_sets(params(records=[dict(name="www", type="A", values=["192.0.2.2"]),
                                                dict(name="api", type="A", values=["192.0.2.3"], ttl=60)]), ZONE)
    diffs = cf.plan_diff(cf.plan_changes(sets, existing))
    assert diffs == [
        {"before_header": "www.example.com A (before)", "after_header": "www.example.com A (after)",
         "before": "www.example.com. auto IN A 192.0.2.1\n", "after": "www.example.com. auto IN A 192.0.2.2\n"},
        {"before_header": "api.example.com A (before)", "after_header": "api.example.com A (after)",
         "before": "", "after": "api.example.com. 60 IN A 192.0.2.3\n"},
    ]


# ---------------------------------------------------------------------------------------
# Requests: retries and errors (a fake SDK call raising the SDK's own exceptions)
# ---------------------------------------------------------------------------------------

REQUEST = httpx.Request("POST", "https://api.cloudflare.com/client/v4/zones/z/dns_records/batch")


def status_error(status, code=None, message="x", headers=None):
    body = {"success": False, "errors": [{"code": code or 1000, "message": message}], "messages": [], "result": None}
    response = httpx.Response(status, headers=headers or {}, json=body, request=REQUEST)
    cls = {401: cloudflare_sdk.AuthenticationError, 403: cloudflare_sdk.PermissionDeniedError,
           429: cloudflare_sdk.RateLimitError}.get(status, cloudflare_sdk.InternalServerError if status >= 500 else cloudflare_sdk.BadRequestError)
    return cls(message, response=response, body=body)


class FakeRaw(object):
    status_code = 200

    def __init__(self, body):
        self.body = body

    def json(self):
        return self.body


class Script(object):
    """A callable that raises or returns the given outcomes in turn."""

    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)
        self.calls = 0

    def __call__(self, **kwargs):
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return FakeRaw(outcome)


def make_api(max_retries=3):
    sleeps = []
    api = cf.CloudflareAPI("tok", max_retries=max_retries, sleep=sleeps.append, client=object())
    return api, sleeps


def test_retry_after_is_honoured_then_success():
    api, sleeps = make_api()
    call = Script(status_error(429, 971, headers={"Retry-After": "2"}), status_error(503, headers={"Retry-After": "1"}),
                  {"success": True, "result": []})
    assert api._call("reading", cf.PERM_DNS_READ, call) == {"success": True, "result": []}
    assert sleeps == [2.0, 1.0] and call.calls == 3 and api.requests == 3


def test_backoff_without_retry_after_doubles():
    api, sleeps = make_api()
    call = Script(status_error(500), status_error(502), {"success": True})
    api._call("reading", cf.PERM_DNS_READ, call)
    assert sleeps == [1.0, 2.0]


def test_rate_limit_that_persists_fails_clearly():
    api, sleeps = make_api(max_retries=2)
    call = Script(*[status_error(429, 971, "Please wait", headers={"Retry-After": "1"}) for _attempt in range(3)])
    with pytest.raises(cf.CloudflareError) as info:
        api._call("reading DNS records", cf.PERM_DNS_READ, call)
    assert call.calls == 3 and sleeps == [1.0, 1.0]
    assert "HTTP 429" in info.value.msg and "after 3 attempt(s)" in info.value.msg and "971" in info.value.msg


def test_retry_after_longer_than_a_minute_is_not_waited_for():
    api, sleeps = make_api()
    call = Script(status_error(429, 971, headers={"Retry-After": "3600"}))
    with pytest.raises(cf.CloudflareError, match="asked to wait 3600 s"):
        api._call("reading", cf.PERM_DNS_READ, call)
    assert sleeps == []


def test_a_5xx_leaves_the_outcome_unknown_for_the_retry():
    api, _sleeps = make_api()
    call = Script(status_error(500), status_error(400, cf.CODE_IDENTICAL_RECORD, "An identical record already exists."))
    with pytest.raises(cf.CloudflareError) as info:
        api._call("applying", cf.PERM_DNS_EDIT, call)
    assert info.value.outcome_unknown and cf.CODE_IDENTICAL_RECORD in info.value.codes
    api, _sleeps = make_api()
    with pytest.raises(cf.CloudflareError) as info:
        api._call("applying", cf.PERM_DNS_EDIT, Script(status_error(400, cf.CODE_IDENTICAL_RECORD)))
    assert not info.value.outcome_unknown


def test_connection_errors_are_retried():
    api, sleeps = make_api(max_retries=1)
    call = Script(cloudflare_sdk.APIConnectionError(request=REQUEST), {"success": True})
    assert api._call("reading", cf.PERM_DNS_READ, call) == {"success": True}
    api, sleeps = make_api(max_retries=1)
    call = Script(cloudflare_sdk.APITimeoutError(request=REQUEST), cloudflare_sdk.APITimeoutError(request=REQUEST))
    with pytest.raises(cf.CloudflareError, match="timed out"):
        api._call("reading", cf.PERM_DNS_READ, call)


@pytest.mark.parametrize("status,permission,expected", [
    (403, cf.PERM_ZONE_READ, "lacks the Zone:Read permission"),
    (403, cf.PERM_DNS_EDIT, "lacks the DNS:Edit permission"),
    (401, cf.PERM_DNS_EDIT, "rejected the API token"),
])
def test_auth_errors_name_the_permission(status, permission, expected):
    api, _sleeps = make_api()
    with pytest.raises(cf.CloudflareError) as info:
        api._call("doing", permission, Script(status_error(status, 10000, "Authentication error")))
    assert expected in info.value.msg and permission in info.value.msg
    assert info.value.status == status


def test_unsuccessful_envelope_with_200_is_an_error():
    api, _sleeps = make_api()
    with pytest.raises(cf.CloudflareError, match="1004: bad"):
        api._call("doing", cf.PERM_DNS_EDIT, Script({"success": False, "errors": [{"code": 1004, "message": "bad"}]}))


def test_retry_after_http_date():
    date = "Wed, 21 Oct 2099 07:28:00 GMT"
    assert cf._retry_after_seconds(httpx.Headers({"Retry-After": date})) > 1000
    assert cf._retry_after_seconds(httpx.Headers({"Retry-After": "1.5"})) == 1.5
    assert cf._retry_after_seconds(httpx.Headers({})) is None


# ---------------------------------------------------------------------------------------
# The SDK client
# ---------------------------------------------------------------------------------------

def test_client_sends_only_the_token_even_with_global_key_variables(monkeypatch):
    monkeypatch.setenv("CLOUDFLARE_EMAIL", "someone@example.com")
    monkeypatch.setenv("CLOUDFLARE_API_KEY", "global-key-should-not-be-sent")
    monkeypatch.setenv("CLOUDFLARE_API_USER_SERVICE_KEY", "service-key")
    client = cf.build_client("the-token", "http://127.0.0.1:9/client/v4", 5)
    assert client.auth_headers == {"Authorization": "Bearer the-token"}
    headers = {k: v for k, v in client.default_headers.items() if isinstance(v, str)}
    assert "X-Auth-Key" not in headers and "X-Auth-Email" not in headers
    assert client.max_retries == 0 and str(client.base_url).startswith("http://127.0.0.1:9/client/v4")


def test_name_filter_shape_matches_the_installed_sdk():
    assert cf._name_filter("www.example.com") == {"exact": "www.example.com"}


def test_argument_spec_is_a_deep_copy():
    spec = cf.cloudflare_argument_spec(zone=dict(type="str"))
    spec["api_token"]["no_log"] = False
    assert cf.CLOUDFLARE_COMMON_ARGS["api_token"]["no_log"] is True
    assert cf.CLOUDFLARE_COMMON_ARGS["api_token"]["fallback"][1] == ["CLOUDFLARE_API_TOKEN"]
    assert "zone" in spec and "zone" not in cf.CLOUDFLARE_COMMON_ARGS


class _NS(object):
    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)


def _paged_api(pages):
    call = Script(*pages)
    client = _NS(dns=_NS(records=_NS(with_raw_response=_NS(list=call))))
    api = cf.CloudflareAPI("tok", client=client, sleep=lambda s: None)
    return api, call


def test_list_records_follows_pagination_and_sends_the_filters():
    pages = [{"success": True, "result": [rec("a.example.com", "A", "192.0.2.%d" % i) for i in range(2)],
              "result_info": {"page": p, "per_page": 2, "total_pages": 3}} for p in (1, 2, 3)]
    api, call = _paged_api(pages)
    seen = []
    original = call.__call__

    def spy(**kwargs):
        seen.append(dict(kwargs))
        return original(**kwargs)

    api.client.dns.records.with_raw_response.list = spy
    records = api.list_records({"id": "z1", "name": ZONE}, name="a.example.com", rtype="A")
    assert len(records) == 6 and call.calls == 3
    assert [k["page"] for k in seen] == [1, 2, 3]
    assert seen[0]["name"] == {"exact": "a.example.com"} and seen[0]["type"] == "A" and seen[0]["per_page"] == cf.LIST_PER_PAGE


def test_list_records_without_total_pages_stops_on_a_short_page():
    api, call = _paged_api([{"success": True, "result": [rec("a.example.com", "A", "192.0.2.1")]}])
    assert len(api.list_records({"id": "z1", "name": ZONE})) == 1 and call.calls == 1


def test_find_zone_matches_the_exact_name():
    client = _NS(zones=_NS(with_raw_response=_NS(list=Script(
        {"success": True, "result": [{"id": "other", "name": "sub.example.com"}, {"id": "z1", "name": "Example.com"}]},
        {"success": True, "result": []}))))
    api = cf.CloudflareAPI("tok", client=client, sleep=lambda s: None)
    assert api.find_zone(ZONE) == {"id": "z1", "name": ZONE}
    with pytest.raises(cf.CloudflareError, match="Zone example.com was not found"):
        api.find_zone(ZONE)
