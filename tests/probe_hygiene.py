"""Probes that tests/test_suite_hygiene.py runs in a child pytest (not collected by default: no test_ prefix)."""

import os

import pytest

from tests.conftest import steers_the_run


def test_sees_no_digest_variables():
    leaked = sorted(k for k in os.environ if k.startswith("DIGEST_") and not steers_the_run(k))
    assert not leaked, leaked


def test_uses_the_browser(browser):
    assert browser.version


@pytest.mark.slow
def test_marked_slow():
    pass


def test_keeps_the_run_settings():
    assert os.environ.get("DIGEST_REQUIRE_CORPUS") == "1" and os.environ.get("DIGEST_SLOW") == "1"
