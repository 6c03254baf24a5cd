"""`send-test-event`: every supported type, signed as its sender signs it, accepted, processed."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from receiver.cli import ALL_TYPES, send_test_event
from tests.signing import PLATFORM_SECRET, TEN99_SECRET


@pytest.fixture
def cli(live_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Any:
    monkeypatch.chdir(tmp_path)  # no var/dev-secrets.env here: the environment decides
    monkeypatch.setenv("TEN99POLICY_WEBHOOK_SECRETS", TEN99_SECRET)
    monkeypatch.setenv("PLATFORM_WEBHOOK_SECRETS", PLATFORM_SECRET)

    def run(*args: str) -> Any:
        return CliRunner().invoke(send_test_event, [*args, "--url", live_server])

    return run


def test_every_supported_type_is_accepted_and_processed(cli, rt, drain, redis):
    for event_type in ALL_TYPES:
        result = cli(event_type)
        assert result.exit_code == 0, (event_type, result.output)
        assert '"status": "queued"' in result.output, (event_type, result.output)
    drain()
    statuses = [redis.hget(k, "status") for k in redis.scan_iter("event:*")]
    assert len(statuses) == len(ALL_TYPES)
    assert set(statuses) == {b"done"}


def test_a_sample_charge_becomes_one_confirmation_email(cli, rt, drain, sendgrid):
    assert cli("invoice.charge_card_succeeded", "--contractor", "cn_tour").exit_code == 0
    drain()
    [mail] = sendgrid.accepted
    assert mail["body"]["categories"] == ["payment_confirmation"]
    assert mail["body"]["personalizations"][0]["to"][0]["email"] == "maya.thompson@example.com"


def test_set_changes_the_event_data(cli, rt, drain, sendgrid):
    result = cli(
        "invoice.charge_card_succeeded",
        "--set",
        "premium_due=9900",
        "--set",
        "contractor.email=sam@example.com",
        "--print-body",
    )
    assert result.exit_code == 0, result.output
    assert '"premium_due": 9900' in result.output
    drain()
    [mail] = sendgrid.accepted
    assert mail["body"]["personalizations"][0]["to"][0]["email"] == "sam@example.com"
    assert "$99.00" in mail["body"]["content"][0]["value"]


def test_bad_input_is_a_clear_usage_error(cli, monkeypatch):
    unknown = cli("invoice.exploded")
    assert unknown.exit_code == 2 and "invoice.exploded" in unknown.output
    bad_set = cli("invoice.charge_card_succeeded", "--set", "no-equals-sign")
    assert bad_set.exit_code == 2 and "key=value" in bad_set.output
    monkeypatch.delenv("PLATFORM_WEBHOOK_SECRETS")
    no_secret = cli("contractor.updated")
    assert no_secret.exit_code == 2 and "PLATFORM_WEBHOOK_SECRETS is not set" in no_secret.output


def test_a_refusal_is_printed_and_fails_the_command(cli, monkeypatch):
    monkeypatch.setenv("TEN99POLICY_WEBHOOK_SECRETS", "whsec_not_the_configured_one")
    result = cli("policy.active")
    assert result.exit_code == 1
    assert "401" in result.output and "invalid_signature" in result.output


def test_without_the_environment_it_uses_make_runs_secrets_file(cli, monkeypatch, tmp_path):
    monkeypatch.delenv("TEN99POLICY_WEBHOOK_SECRETS")
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "dev-secrets.env").write_text(
        f"TEN99POLICY_WEBHOOK_SECRETS={TEN99_SECRET},whsec_older\nSECRET_KEY=x\n"
    )
    result = cli("policy.active")
    assert result.exit_code == 0 and "queued" in result.output, result.output
