"""`send-test-event`: every supported type, signed as its sender signs it, accepted, processed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from receiver.cli import ALL_TYPES, replay_command, send_test_event
from receiver.store.keys import event as event_key
from tests.events import MAYA, charge_succeeded, platform_event
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
    assert cli("invoice.charge_card_succeeded").exit_code == 0
    drain()
    [mail] = sendgrid.accepted
    assert mail["body"]["categories"] == ["payment_confirmation"]
    assert mail["body"]["personalizations"][0]["to"][0]["email"] == "maya.thompson@example.com"


def test_each_test_contractor_has_an_inbox_and_a_name_of_its_own(cli, rt, drain, sendgrid):
    for contractor in ("cn_example", "cn_tour", "cn_other"):
        result = cli("invoice.charge_card_succeeded", "--contractor", contractor)
        assert result.exit_code == 0, result.output
    drain()
    to = {m["body"]["personalizations"][0]["to"][0]["email"] for m in sendgrid.accepted}
    assert to == {"maya.thompson@example.com", "cn_tour@example.com", "cn_other@example.com"}
    greeting = {
        m["body"]["personalizations"][0]["to"][0]["email"]: m["body"]["content"][0]["value"]
        for m in sendgrid.accepted
    }
    assert "Hi Maya," in greeting["maya.thompson@example.com"]
    assert "Hi Maya," not in greeting["cn_tour@example.com"]
    assert "Hi Maya," not in greeting["cn_other@example.com"]


def test_help_lists_the_types_by_sender() -> None:
    result = CliRunner().invoke(send_test_event, ["--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "1099policy: application.complete," in text and "platform: assignment.created," in text
    assert all(t in text for t in ALL_TYPES)


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


@pytest.fixture
def replay_cli(config: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Any:
    monkeypatch.chdir(tmp_path)
    for name, value in config.items():
        monkeypatch.setenv(name, str(value))

    def run(*args: str) -> Any:
        return CliRunner().invoke(replay_command, list(args))

    return run


def test_replay_processes_an_event_again_and_sends_nothing_twice(
    send, rt, drain, sendgrid, redis, replay_cli
):
    event = charge_succeeded("in_replay")
    assert send.ten99(event).status_code == 202
    drain()
    assert len(sendgrid.accepted) == 1
    result = replay_cli(event["id"])
    assert result.exit_code == 0 and "queued" in result.output, result.output
    drain()
    stored = redis.hgetall(event_key("1099policy", event["id"]))
    assert stored[b"status"] == b"done" and stored[b"attempts"] == b"2"
    assert stored[b"replays"] == b"1"
    assert len(sendgrid.accepted) == 1  # the confirmation's identity was already sent


def test_replay_finds_the_sender_from_the_stored_event(send, rt, drain, replay_cli):
    send.platform(platform_event("contractor.updated", MAYA), "msg_contact")
    drain()
    result = replay_cli("msg_contact")  # no --source: the platform's is the one stored
    assert result.exit_code == 0, result.output
    assert result.output.startswith("platform msg_contact: queued")


def test_replay_says_why_it_cannot(send, rt, drain, replay_cli):
    missing = replay_cli("ev_never_seen")
    assert missing.exit_code == 2
    assert "no event ev_never_seen is stored from 1099policy or platform" in missing.output
    unknown = {"id": "ev_odd", "type": "thing.happened", "created": 1700000000, "data": {}}
    assert send.ten99(unknown).status_code == 202
    ignored = replay_cli("ev_odd")
    assert ignored.exit_code == 1 and "no handler" in ignored.output
    wrong_source = replay_cli("ev_odd", "--source", "platform")
    assert wrong_source.exit_code == 1 and "no such event" in wrong_source.output


def a_clone(path: Any) -> None:
    """A folder that looks like a clone where `make run` was used (not running now)."""
    (path / "scripts").mkdir()
    (path / "scripts" / "run_local.py").write_text("")
    (path / "var").mkdir()
    (path / "var" / "dev-secrets.env").write_text(
        f"TEN99POLICY_WEBHOOK_SECRETS={TEN99_SECRET}\nPLATFORM_WEBHOOK_SECRETS={PLATFORM_SECRET}\n"
    )


def test_beside_a_clone_without_make_run_no_default_redis_is_used(
    config, send, rt, drain, replay_cli, monkeypatch, tmp_path
):
    send.ten99(charge_succeeded("in_clone"))
    drain()
    a_clone(tmp_path)
    monkeypatch.delenv("REDIS_URL")  # the CLI would fall back to redis://127.0.0.1:6379
    result = replay_cli("ev_paid_in_clone")
    assert result.exit_code == 2
    assert "var/run.env is missing: no `make run` is running in this folder" in result.output
    # With `make run` running (it writes var/run.env), its Redis is the one used.
    (tmp_path / "var" / "run.env").write_text(f"REDIS_URL={config['REDIS_URL']}\nPORT=1\n")
    result = replay_cli("ev_paid_in_clone")
    assert result.exit_code == 0 and "queued" in result.output, result.output


def flask_cli(cwd: Any, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    keep = {k: v for k, v in os.environ.items() if not k.endswith("_SECRETS")}
    return subprocess.run(
        [str(Path(sys.executable).parent / "flask"), "--app", "receiver", *args],
        cwd=cwd,
        env={**keep, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_flask_cli_says_a_missing_setting_in_a_line_not_a_traceback(config, tmp_path):
    helped = flask_cli(tmp_path, "--help")
    assert helped.returncode == 0 and "send-test-event" in helped.stdout
    assert "Traceback" not in helped.stdout + helped.stderr
    assert "TEN99POLICY_WEBHOOK_SECRETS is required" in helped.stderr
    routes = flask_cli(tmp_path, "routes")
    assert routes.returncode == 2 and "Traceback" not in routes.stderr
    assert "TEN99POLICY_WEBHOOK_SECRETS is required" in routes.stderr
    # Beside a running `make run`, its settings are found.
    a_clone(tmp_path)
    (tmp_path / "var" / "run.env").write_text(f"REDIS_URL={config['REDIS_URL']}\nPORT=1\n")
    routes = flask_cli(tmp_path, "routes")
    assert routes.returncode == 0 and "/readyz" in routes.stdout, routes.stderr
