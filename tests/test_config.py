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


def test_tls_settings(tmp_path):
    ca, cert, key = (tmp_path / name for name in ("ca.pem", "client.pem", "client.key"))
    for path in (ca, cert, key):
        path.write_text("-----BEGIN-----\n")
    files = {"REDIS_TLS_CA_FILE": str(ca), "REDIS_TLS_CERT_FILE": str(cert)}
    files["REDIS_TLS_KEY_FILE"] = str(key)
    cfg = load_config(environ={**BASE, "REDIS_URL": "rediss://redis.internal:6380/0", **files})
    assert (cfg.REDIS_TLS_CA_FILE, cfg.REDIS_TLS_KEY_FILE) == (str(ca), str(key))
    sentinels = {"REDIS_SENTINELS": "10.0.0.1:26379", "REDIS_SENTINEL_MASTER": "receiver"}
    cfg = load_config(environ={**BASE, **sentinels, "REDIS_SENTINEL_TLS": "yes", **files})
    assert cfg.REDIS_SENTINEL_TLS is True
    refused = [
        # Files beside a plain-text connection: it would have stayed plain text unnoticed.
        ({"REDIS_URL": "redis://redis.internal:6379/0", **files}, "REDIS_TLS_CA_FILE"),
        ({**sentinels, "REDIS_URL": "rediss://x:6380/0", **files}, "REDIS_TLS_CA_FILE"),
        ({"REDIS_SENTINEL_TLS": "true"}, "REDIS_SENTINEL_TLS"),
        (
            {"REDIS_URL": "rediss://x:6380/0", "REDIS_TLS_CERT_FILE": str(cert)},
            "REDIS_TLS_KEY_FILE",
        ),
        (
            {"REDIS_URL": "rediss://x:6380/0", "REDIS_TLS_CA_FILE": str(tmp_path / "no")},
            "REDIS_TLS_CA_FILE",
        ),
    ]
    for settings, name in refused:
        with pytest.raises(ConfigError) as info:
            load_config(environ={**BASE, **settings})
        assert info.value.name == name, settings


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
        ("INTERRUPTED_SEND_WAIT_MINUTES", "0"),
        ("INTERRUPTED_SEND_WAIT_MINUTES", "15m"),
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
