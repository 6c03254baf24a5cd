"""Start-up configuration: defaults, environment, and clear errors naming the setting."""

from __future__ import annotations

import subprocess
import sys

import pytest

from receiver.config import load_config, sentinel_addresses
from receiver.errors import ConfigError

BASE = {
    "TEN99POLICY_WEBHOOK_SECRETS": "whsec_a, whsec_b",
    "PLATFORM_WEBHOOK_SECRETS": "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
}


def test_defaults_and_lists():
    cfg = load_config(environ=BASE)
    assert cfg.TEN99POLICY_WEBHOOK_SECRETS == ("whsec_a", "whsec_b")
    assert cfg.TEN99POLICY_SIGNATURE_HEADER == "Ten99Policy-Signature"
    assert cfg.WEBHOOK_TOLERANCE_SECONDS == 300
    assert cfg.WEBHOOK_MAX_BYTES == 1048576
    assert cfg.EVENT_RETENTION_DAYS == 30
    assert cfg.SENDGRID_API_HOST == "https://api.sendgrid.com"
    assert cfg.SENDGRID_API_KEY is None
    assert cfg.NOTICE_COALESCE_SECONDS == 300


def test_sentinel_settings():
    cfg = load_config(
        environ={
            **BASE,
            "REDIS_SENTINELS": "10.0.0.1:26379, [::1]:26380",
            "REDIS_SENTINEL_MASTER": "receiver",
            "REDIS_MIN_REPLICA_ACKS": "1",
        }
    )
    assert sentinel_addresses(cfg) == [("10.0.0.1", 26379), ("::1", 26380)]
    assert cfg.REDIS_MIN_REPLICA_ACKS == 1 and cfg.REDIS_REPLICA_ACK_TIMEOUT_MS == 500
    with pytest.raises(ConfigError) as info:
        load_config(environ={**BASE, "REDIS_SENTINELS": "10.0.0.1:26379"})
    assert info.value.name == "REDIS_SENTINEL_MASTER"
    with pytest.raises(ConfigError) as info:
        load_config(environ={**BASE, "REDIS_SENTINEL_MASTER": "receiver"})
    assert info.value.name == "REDIS_SENTINELS"


def test_sendgrid_host_is_normalised():
    cfg = load_config(environ={**BASE, "SENDGRID_API_HOST": "http://127.0.0.1:9/"})
    assert cfg.SENDGRID_API_HOST == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    "name,value",
    [
        ("TEN99POLICY_WEBHOOK_SECRETS", ""),
        ("PLATFORM_WEBHOOK_SECRETS", ""),
        ("PLATFORM_WEBHOOK_SECRETS", "not-whsec"),
        ("PLATFORM_WEBHOOK_SECRETS", "whsec_***"),
        ("WEBHOOK_TOLERANCE_SECONDS", "0"),
        ("WEBHOOK_TOLERANCE_SECONDS", "five"),
        ("WEBHOOK_MAX_BYTES", "-1"),
        ("REDIS_URL", "localhost:6379"),
        ("SENDGRID_API_HOST", "api.sendgrid.com"),
        ("EMAIL_FROM", "nobody"),
        ("PORT", "eighty"),
        ("NOTICE_COALESCE_SECONDS", "-1"),
        ("NOTICE_COALESCE_SECONDS", "5m"),
        ("LOG_FORMAT", "yaml"),
        ("LOG_LEVEL", "verbose"),
        ("REDIS_SENTINELS", "127.0.0.1"),
        ("REDIS_SENTINELS", "127.0.0.1:26379,sentinel-2:port"),
        ("REDIS_MIN_REPLICA_ACKS", "-1"),
        ("REDIS_MIN_REPLICA_ACKS", "one"),
        ("REDIS_REPLICA_ACK_TIMEOUT_MS", "0"),
        ("REDIS_REPLICA_ACK_TIMEOUT_MS", "5000"),
    ],
)
def test_bad_setting_names_itself(name, value):
    with pytest.raises(ConfigError) as info:
        load_config(environ={**BASE, name: value})
    assert info.value.name == name
    assert name in str(info.value)


def test_worker_refuses_to_start_without_secrets():
    env = {"PATH": "/usr/bin:/bin", "REDIS_URL": "redis://127.0.0.1:1/0"}
    proc = subprocess.run(
        [sys.executable, "worker.py", "--burst"], env=env, capture_output=True, timeout=60
    )
    assert proc.returncode != 0
    assert b"TEN99POLICY_WEBHOOK_SECRETS" in proc.stderr
    assert b"whsec_" not in proc.stderr
