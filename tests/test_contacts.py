"""Contractor contacts: event-sourced storage, the 1099Policy API fallback and its cache.

Real Redis (the `redis` fixture) and real HTTP: the official `ten99policy` client talks to
`tests/ten99policy_server.py`, so the URL it builds, the headers it sends, its error mapping,
its timeout and its logging are the ones production gets.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
import ten99policy  # type: ignore[import-untyped]
from ten99policy import util as t9_util  # type: ignore[import-untyped]

from receiver.notices.contacts import NEGATIVE_SECONDS, Contact, Contacts, contact_from
from receiver.pipeline.sweeper import sweep
from receiver.store import keys
from tests.records import records
from tests.ten99policy_server import Ten99PolicyServer

KEY = "t9sk_test_0b3f1c2e-contacts"
MAYA: dict[str, Any] = {
    "email": "maya.private@example.com",
    "first_name": "Maya",
    "last_name": "Thompson",
    "phone": "415-474-9088",
    "withhold_premium": False,
    "created": 1646818364,
}


def person(created_tag: str = "", **over: Any) -> Contact:
    fields: dict[str, Any] = {
        "id": "cn_1",
        "email": f"maya{created_tag}@example.com",
        "first_name": "Maya",
        "last_name": "Thompson",
        "timezone": "America/Chicago",
        "withhold_premium": None,
    }
    fields.update(over)
    return Contact(**fields)


@pytest.fixture(scope="session")
def t9_server() -> Iterator[Ten99PolicyServer]:
    with Ten99PolicyServer() as server:
        yield server


@pytest.fixture
def api(t9_server: Ten99PolicyServer) -> Iterator[Ten99PolicyServer]:
    t9_server.reset()
    yield t9_server
    t9_server.reset()


ContactsFactory = Callable[..., Contacts]


@pytest.fixture
def make(redis: redis_lib.Redis, api: Ten99PolicyServer) -> ContactsFactory:
    def build(**kw: Any) -> Contacts:
        options: dict[str, Any] = {"api_key": KEY, "api_base": api.url, "timeout": 2.0}
        options.update(kw)
        return Contacts(redis, **options)

    return build


# -- remember: newest wins ----------------------------------------------------------------


def test_remember_then_stored_round_trips(make: ContactsFactory) -> None:
    contacts = make()
    p = person(withhold_premium=True)
    assert contacts.remember(p, 100) is True
    assert contacts.stored("cn_1") == p
    assert contacts.stored("cn_1").name == "Maya Thompson"  # type: ignore[union-attr]
    assert contacts.stored("cn_2") is None


def test_newer_event_replaces_older(make: ContactsFactory) -> None:
    contacts = make()
    assert contacts.remember(person("old"), 100)
    assert contacts.remember(person("new"), 200)
    assert contacts.stored("cn_1") == person("new")


def test_a_field_missing_from_the_newest_event_keeps_its_newest_known_value(
    make: ContactsFactory,
) -> None:
    # A platform contractor.updated (with a time zone) and a later 1099Policy event embedding
    # the contractor (never a time zone), applied in both orders.
    platform = person("old", timezone="America/Chicago", withhold_premium=True)
    embedded = person("new", timezone=None, first_name="Maya J.")
    expected = person(
        "new", timezone="America/Chicago", first_name="Maya J.", withhold_premium=True
    )
    for order in ([(platform, 100), (embedded, 200)], [(embedded, 200), (platform, 100)]):
        contacts = make()
        contacts.redis.delete(keys.contractor("cn_1"))
        results = [contacts.remember(p, created) for p, created in order]
        assert all(results)  # each contributed a field
        assert contacts.stored("cn_1") == expected


def test_older_event_arriving_late_changes_nothing(make: ContactsFactory) -> None:
    contacts = make()
    assert contacts.remember(person("new"), 200)
    assert contacts.remember(person("old"), 100) is False
    assert contacts.stored("cn_1") == person("new")


def test_equal_created_replaces_and_none_counts_as_oldest(make: ContactsFactory) -> None:
    contacts = make()
    assert contacts.remember(person("a"), None)
    assert contacts.remember(person("b"), None)  # None vs None: the later one wins
    assert contacts.remember(person("c"), 100)  # any time beats None
    assert contacts.remember(person("d"), None) is False  # None never beats a time
    assert contacts.remember(person("e"), 100)  # equal time replaces
    assert contacts.stored("cn_1") == person("e")


def test_concurrent_remembers_end_with_the_newest(make: ContactsFactory) -> None:
    contacts = make()
    times = list(range(1, 41))
    random.Random(7).shuffle(times)
    start = threading.Barrier(len(times))

    def apply(t: int) -> None:
        start.wait()
        contacts.remember(person(str(t)), t)

    threads = [threading.Thread(target=apply, args=(t,)) for t in times]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert contacts.stored("cn_1") == person("40")


def test_remember_needs_an_id(make: ContactsFactory) -> None:
    with pytest.raises(ValueError):
        make().remember(person(id=""), 1)


def test_contact_from_reads_defensively() -> None:
    p = contact_from(
        {
            "id": "cn_9",
            "email": "  joe@example.com ",
            "first_name": "Joe",
            "last_name": None,
            "timezone": "",
            "withhold_premium": "yes",
            "phone": "415-474-9088",
        }
    )
    assert p == Contact(id="cn_9", email="joe@example.com", first_name="Joe")
    assert p.name == "Joe"
    assert contact_from({"id": "cn_9", "email": {"x": 1}, "withhold_premium": True}) == Contact(
        id="cn_9", withhold_premium=True
    )


# -- notices waiting for a contact ----------------------------------------------------------


def test_notice_created_while_release_runs_is_not_orphaned(rt: Any, redis: redis_lib.Redis) -> None:
    # Release forgets a contractor in `notices:awaiting` only if nothing waits for it, in one
    # script: a notice created meanwhile is still looked up again. Interleaving: release has
    # run its loop; another worker creates a waiting notice; release's last step runs.
    sam = person(
        id="cn_3", email="sam@example.com", first_name="Sam", last_name="Ray", timezone=None
    )
    rt.contacts.remember(sam, 1)
    rt.records.create(
        "payment_confirmation",
        "charge:in_3",
        "contractor:cn_3",
        Contact(),
        {"x": 1},
        waiting_for="cn_3",
    )
    rt.records._forget_if_done(keys=[keys.awaiting("cn_3"), keys.NOTICES_AWAITING], args=["cn_3"])
    assert redis.zscore(keys.NOTICES_AWAITING, "cn_3") is not None
    for later in (60, 3600):
        redis.delete("sweeper:lock")
        sweep(rt, now=time.time() + later)
    [rec] = records(redis, "payment_confirmation")
    assert rec["state"] != "awaiting_contact", "stuck: nothing will ever release it"


def test_a_sweep_held_up_past_its_interval_is_not_joined_by_another(
    config: dict[str, Any], redis: redis_lib.Redis, api: Ten99PolicyServer
) -> None:
    """The sweeper lock is the sweep's until it ends, then lives one interval more. It used to
    live one interval from the sweep's start: a sweep still busy then (here a slow contact
    lookup; in the first version of tests/test_many_processes.py, 200 lost events on a loaded
    box) was joined by another worker's, and both re-queued the same records."""
    from receiver.config import load_config
    from receiver.pipeline.runtime import build
    from tests.processes import wait_until

    rt = build(
        load_config(
            {
                **config,
                "TEN99POLICY_API_KEY": KEY,
                "TEN99POLICY_API_BASE": api.url,
                "TEN99POLICY_API_TIMEOUT_SECONDS": "5",
            }
        )
    )
    rt.records.create(
        "payment_confirmation",
        "charge:in_9",
        "contractor:cn_9",
        Contact(),
        {"x": 1},
        waiting_for="cn_9",
    )
    later = time.time() + 3600
    api.hang()  # the first sweep's lookup waits for an answer
    first: list[tuple[int, int]] = []
    sweeping = threading.Thread(target=lambda: first.append(sweep(rt, now=later, interval=1)))
    sweeping.start()
    try:
        assert wait_until(lambda: len(api.requests) == 1)
        time.sleep(1.5)  # more than the interval: the lock's whole life, before
        assert sweep(rt, now=later, interval=1) == (0, 0)
        assert len(api.requests) == 1  # the second sweep did not run
    finally:
        api.reset()  # the lookup is answered (unknown contractor)
        sweeping.join(30)
    assert first == [(0, 0)]
    assert 0 < redis.pttl(keys.SWEEPER_LOCK) <= 1000  # then one interval, as before


# -- lookup: stored, then API, then nothing -----------------------------------------------


def test_stored_beats_the_api(make: ContactsFactory, api: Ten99PolicyServer) -> None:
    api.contractors["cn_1"] = MAYA
    contacts = make()
    contacts.remember(person("event"), 100)
    assert contacts.lookup("cn_1") == person("event")
    assert api.requests == []


def test_api_lookup_when_nothing_stored_and_cached(
    make: ContactsFactory, api: Ten99PolicyServer, redis: redis_lib.Redis
) -> None:
    api.contractors["cn_1"] = MAYA
    contacts = make(cache_seconds=3600)
    expected = Contact(
        id="cn_1",
        email=MAYA["email"],
        first_name="Maya",
        last_name="Thompson",
        withhold_premium=False,
    )
    assert contacts.lookup("cn_1") == expected
    [request] = api.requests
    assert request["method"] == "GET"
    assert request["path"] == "/api/v1/contractors/cn_1"
    assert request["authorization"] == f"Bearer {KEY}"
    assert request["headers"]["ten99policy-environment"] == "sandbox"

    assert contacts.lookup("cn_1") == expected  # from the cache: no second request
    assert len(api.requests) == 1
    assert 3590 < redis.ttl(keys.contractor_api("cn_1")) <= 3600
    assert contacts.stored("cn_1") is None  # the API copy never becomes the stored contact


def test_event_arriving_after_an_api_copy_wins(
    make: ContactsFactory, api: Ten99PolicyServer, redis: redis_lib.Redis
) -> None:
    api.contractors["cn_1"] = MAYA
    contacts = make()
    assert contacts.lookup("cn_1").email == MAYA["email"]  # type: ignore[union-attr]
    assert contacts.remember(person("event"), None)  # even an undated event beats the API
    assert redis.exists(keys.contractor_api("cn_1")) == 0
    assert contacts.lookup("cn_1") == person("event")
    assert len(api.requests) == 1


def test_stored_contact_without_email_is_completed_from_the_api(
    make: ContactsFactory, api: Ten99PolicyServer
) -> None:
    api.contractors["cn_1"] = MAYA
    contacts = make()
    contacts.remember(
        Contact(id="cn_1", first_name="Maya", timezone="America/Denver"),
        100,
    )
    assert contacts.lookup("cn_1") == Contact(
        id="cn_1",
        email=MAYA["email"],
        first_name="Maya",
        last_name="Thompson",
        timezone="America/Denver",
        withhold_premium=False,
    )
    api.fail_with(500)
    contacts.redis.delete(keys.contractor_api("cn_1"))
    # The API down: what the events said, still without an email (the notice waits).
    assert contacts.lookup("cn_1") == Contact(
        id="cn_1", first_name="Maya", timezone="America/Denver"
    )


def test_live_key_sends_the_production_environment(
    make: ContactsFactory, api: Ten99PolicyServer
) -> None:
    api.contractors["cn_1"] = MAYA
    make(api_key="t9sk_live_abc").lookup("cn_1")
    assert api.requests[0]["headers"]["ten99policy-environment"] == "production"


def test_unknown_contractor_is_none_and_negatively_cached(
    make: ContactsFactory, api: Ten99PolicyServer, redis: redis_lib.Redis
) -> None:
    contacts = make()
    assert contacts.lookup("cn_missing") is None
    assert contacts.lookup("cn_missing") is None
    assert len(api.requests) == 1
    assert 0 < redis.ttl(keys.contractor_api("cn_missing")) <= NEGATIVE_SECONDS


def test_api_copy_without_email_is_cached_briefly(
    make: ContactsFactory, api: Ten99PolicyServer, redis: redis_lib.Redis
) -> None:
    api.contractors["cn_1"] = {"first_name": "Maya", "email": None}
    assert make().lookup("cn_1") == Contact(id="cn_1", first_name="Maya")
    assert 0 < redis.ttl(keys.contractor_api("cn_1")) <= NEGATIVE_SECONDS


def test_server_error_is_none_and_not_cached(
    make: ContactsFactory, api: Ten99PolicyServer, redis: redis_lib.Redis
) -> None:
    api.contractors["cn_1"] = MAYA
    api.fail_with(500)
    contacts = make()
    assert contacts.lookup("cn_1") is None
    assert len(api.requests) == 1  # the client's own retries are off
    assert redis.exists(keys.contractor_api("cn_1")) == 0
    api.fail_with(503)
    assert contacts.lookup("cn_1") is None
    assert len(api.requests) == 2  # asked again: a 5xx says nothing about the contractor


def test_hanging_api_times_out_quickly(make: ContactsFactory, api: Ten99PolicyServer) -> None:
    api.contractors["cn_1"] = MAYA
    api.hang()
    contacts = make(timeout=0.5)
    started = time.monotonic()
    assert contacts.lookup("cn_1") is None
    elapsed = time.monotonic() - started
    # Timed only where a loaded machine cannot make it wrong: not before the timeout (load
    # only makes it later) and before the stand-in lets go (then the lookup would get an
    # answer). That 0.5 s, not another test's 2 s, was in force is read from the client.
    assert 0.4 < elapsed < api.max_hang
    assert ten99policy.default_http_client._timeout == 0.5
    assert len(api.requests) == 1


def test_unreachable_api_is_none(make: ContactsFactory) -> None:
    # A port nothing listens on: connection refused.
    assert make(api_base="http://127.0.0.1:9").lookup("cn_1") is None


def test_no_api_key_means_no_request(make: ContactsFactory, api: Ten99PolicyServer) -> None:
    api.contractors["cn_1"] = MAYA
    assert make(api_key=None).lookup("cn_1") is None
    assert make(api_key="").lookup("cn_1") is None
    assert api.requests == []


def test_client_globals_are_made_safe(make: ContactsFactory, api: Ten99PolicyServer) -> None:
    ten99policy.log = "debug"
    ten99policy.verify_ssl_certs = False
    ten99policy.max_network_retries = 3
    make(api_base=api.url + "/")
    assert ten99policy.log is None
    assert ten99policy.verify_ssl_certs is True
    assert ten99policy.max_network_retries == 0
    assert ten99policy.api_key is None  # the library ships a shared test key as default
    assert ten99policy.api_base == api.url  # trailing slash stripped: no "//api/v1"
    assert ten99policy.default_http_client._timeout == 2.0


# -- personal data never reaches logs ------------------------------------------------------


def test_nothing_about_the_person_is_logged_or_printed(
    make: ContactsFactory,
    api: Ten99PolicyServer,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What a developer's shell or an app's logging setup might have switched on.
    monkeypatch.setattr(ten99policy, "log", "debug")
    monkeypatch.setattr(t9_util, "TEN99POLICY_LOG", "debug")
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="ten99policy")
    api.contractors["cn_1"] = MAYA
    contacts = make()
    assert contacts.lookup("cn_1") is not None
    assert contacts.lookup("cn_gone") is None
    api.fail_with(500)
    assert contacts.lookup("cn_other") is None

    out, err = capsys.readouterr()
    logged = caplog.text + out + err
    for secret in (MAYA["email"], "Thompson", "415-474-9088", KEY):
        assert secret not in logged
    assert "cn_other" in caplog.text  # our own warning says which lookup failed
    assert not [r for r in caplog.records if r.name.startswith("ten99policy")]


# -- TLS certificates are verified ---------------------------------------------------------


def _self_signed(tmp: Path) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


def test_untrusted_certificate_is_refused(
    redis: redis_lib.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = _self_signed(tmp_path)
    with Ten99PolicyServer(tls=(cert, key)) as server:
        server.contractors["cn_1"] = MAYA
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        contacts = Contacts(redis, api_key=KEY, api_base=server.url, timeout=2.0)
        assert contacts.lookup("cn_1") is None  # the SDK alone would have accepted it
        assert server.requests == []
        assert redis.exists(keys.contractor_api("cn_1")) == 0

        # Trusting that certificate (as an operator would a corporate CA) makes it work,
        # which shows the refusal above was the certificate check and nothing else.
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert)
        assert contacts.lookup("cn_1") is not None
        assert len(server.requests) == 1
