"""README is the manual: every command and every option must appear in it."""

import re

import click
import pytest

from digest.cli import main
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def walk(group: click.Group, prefix: str = ""):
    for name, command in group.commands.items():
        full = f"{prefix}{name}"
        yield full, command
        if isinstance(command, click.Group):
            yield from walk(command, full + " ")


COMMANDS = sorted(walk(main), key=lambda c: c[0])


@pytest.mark.parametrize("name, command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_command_documented(name, command):
    assert re.search(rf"digest (\[[^\]]*\] )?{re.escape(name)}\b", README), f"`digest {name}` not in README"
    for param in command.params:
        if isinstance(param, click.Option):
            assert any(opt in README for opt in param.opts), f"{name}: option {param.opts} not in README"


def test_global_options_documented():
    for param in main.params:
        if isinstance(param, click.Option):
            assert any(opt in README for opt in param.opts), param.opts
    for env in ("DIGEST_DB", "DIGEST_CONFIG"):
        assert env in README
