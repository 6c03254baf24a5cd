"""Settings of the coverage API, push and page: optional, and refused when malformed."""

from __future__ import annotations

import pytest

from receiver.config import load_config
from receiver.errors import ConfigError
from tests.callback_server import SECRET

BASE = {
    "TEN99POLICY_WEBHOOK_SECRETS": "whsec_a",
    "PLATFORM_WEBHOOK_SECRETS": "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
}


def test_defaults_leave_every_feature_off():
    cfg = load_config(environ=BASE)
    assert cfg.API_TOKENS == ()
    assert cfg.PLATFORM_CALLBACK_URL is None and cfg.PLATFORM_CALLBACK_SECRET is None
    assert cfg.SECRET_KEY is None and cfg.PUBLIC_BASE_URL is None
    assert cfg.COVERAGE_LINK_MAX_AGE_DAYS == 30


def test_values_are_parsed():
    cfg = load_config(
        environ={
            **BASE,
            "API_TOKENS": " tok_aaaaaaaaaaaaaaaa , tok_bbbbbbbbbbbbbbbb,",
            "PLATFORM_CALLBACK_URL": "https://platform.example/hooks",
            "PLATFORM_CALLBACK_SECRET": SECRET,
            "SECRET_KEY": "s" * 32,
            "PUBLIC_BASE_URL": "https://app.example.com",
            "COVERAGE_LINK_MAX_AGE_DAYS": "7",
        }
    )
    assert cfg.API_TOKENS == ("tok_aaaaaaaaaaaaaaaa", "tok_bbbbbbbbbbbbbbbb")
    assert cfg.COVERAGE_LINK_MAX_AGE_DAYS == 7


@pytest.mark.parametrize(
    "overrides,name",
    [
        ({"API_TOKENS": "short"}, "API_TOKENS"),
        ({"PLATFORM_CALLBACK_URL": "ftp://x"}, "PLATFORM_CALLBACK_URL"),
        ({"PLATFORM_CALLBACK_URL": "https://platform.example/hooks"}, "PLATFORM_CALLBACK_SECRET"),
        ({"PLATFORM_CALLBACK_SECRET": "not-whsec"}, "PLATFORM_CALLBACK_SECRET"),
        ({"PLATFORM_CALLBACK_SECRET": "whsec_%%%"}, "PLATFORM_CALLBACK_SECRET"),
        ({"SECRET_KEY": "too-short"}, "SECRET_KEY"),
        ({"PUBLIC_BASE_URL": "app.example.com"}, "PUBLIC_BASE_URL"),
        ({"COVERAGE_LINK_MAX_AGE_DAYS": "0"}, "COVERAGE_LINK_MAX_AGE_DAYS"),
        ({"COVERAGE_LINK_MAX_AGE_DAYS": "soon"}, "COVERAGE_LINK_MAX_AGE_DAYS"),
    ],
)
def test_malformed_values_stop_start_up(overrides, name):
    with pytest.raises(ConfigError) as info:
        load_config(environ={**BASE, **overrides})
    assert info.value.name == name
