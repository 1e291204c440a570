"""Themes: `[site] theme = "DIR"` overrides bundled templates and static files by name (Jinja's loader chain)."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import pytest

from digest import pipeline
from digest.config import REPO_ROOT, load_config
from digest.errors import ConfigError
from tests.test_site_incremental import files, seeded

CARD = re.compile(r'<article class="(finding|themed)">.*?</article>', re.DOTALL)
THEMED_CARD = """{% macro card(f, root) -%}
<article class="themed"><a href="{{ root }}{{ f.path }}">{{ f.item.title }}</a> by {{ f.authors|authors }}</article>
{%- endmacro %}
"""


def themed(config, folder: Path):
    return dataclasses.replace(config, site=dataclasses.replace(config.site, theme=folder))


def test_a_theme_overriding_only_the_card_changes_every_card_and_nothing_else(tmp_path, db):
    config, engine = seeded(tmp_path, db, 40)
    theme = tmp_path / "theme"
    theme.mkdir()
    (theme / "_card.html").write_text(THEMED_CARD)
    plain, styled = tmp_path / "plain", tmp_path / "styled"
    pipeline.build_site(engine, config, plain, search=False)
    pipeline.build_site(engine, themed(config, theme), styled, search=False)
    before, after = files(plain), files(styled)
    assert before.keys() == after.keys()
    listed = 0
    for path, data in before.items():
        if path == ".digest-build.json":
            continue
        old, new = data.decode(), after[path].decode()
        cards = CARD.findall(old)
        if not cards:
            assert old == new, f"{path} changed without showing a card"
            continue
        listed += 1
        assert set(cards) == {"finding"} and CARD.findall(new) == ["themed"] * len(cards), path
        assert CARD.sub("", old) == CARD.sub("", new), f"{path} changed outside its cards"
        assert "Ada Lovelace" in new
    assert listed >= 3  # home, tag and week pages


def test_theme_static_files_override_and_a_theme_edit_rerenders(tmp_path, db):
    config, engine = seeded(tmp_path, db, 12)
    theme = tmp_path / "theme"
    theme.mkdir()
    (theme / "style.css").write_text("body { color: rebeccapurple; }\n")
    (theme / "_card.html").write_text(THEMED_CARD)
    out = tmp_path / "site"
    config = themed(config, theme)
    pipeline.build_site(engine, config, out, search=False)
    assert (out / "style.css").read_text() == "body { color: rebeccapurple; }\n"
    assert (out / "search.js").read_bytes() == (REPO_ROOT / "templates" / "search.js").read_bytes()
    assert 'class="themed"' in (out / "index.html").read_text()

    # Editing a theme file changes the build signature: the cards re-render, no stale page stays.
    (theme / "_card.html").write_text(THEMED_CARD.replace("themed", "restyled"))
    _out, written = pipeline.build_site(engine, config, out, search=False)
    assert written > 0 and 'class="restyled"' in (out / "index.html").read_text()
    fresh = tmp_path / "fresh"
    pipeline.build_site(engine, config, fresh, search=False)
    assert files(out) == files(fresh)


def test_the_example_theme_builds(tmp_path, db):
    config, engine = seeded(tmp_path, db, 6)
    theme = tmp_path / "theme"
    shutil.copytree(REPO_ROOT / "docs" / "theme-example", theme)
    out = tmp_path / "site"
    pipeline.build_site(engine, themed(config, theme), out, search=False)
    assert (out / "style.css").read_bytes() == (theme / "style.css").read_bytes()
    assert 'class="finding compact"' in (out / "index.html").read_text()


def test_a_missing_theme_folder_is_a_config_error_naming_it(tmp_path):
    cfg = tmp_path / "digest.toml"
    cfg.write_text('[site]\ntheme = "no-such-theme"\n')
    with pytest.raises(ConfigError, match=r"\[site\]: field 'theme' must be a folder; .*no-such-theme"):
        load_config(cfg)
    (tmp_path / "mytheme").mkdir()
    cfg.write_text('[site]\ntheme = "mytheme"\nrepo_url = "https://github.com/o/r/blob/main/"\n')
    site = load_config(cfg).site
    assert site.theme == tmp_path / "mytheme" and site.repo_url == "https://github.com/o/r/blob/main"


def test_build_with_a_missing_theme_says_error_and_writes_nothing(runner, tmp_path):
    from digest.cli import main

    cfg = tmp_path / "digest.toml"
    cfg.write_text('workspace = "ws"\n[site]\ntheme = "gone"\n[embed]\nmodel = "fake-hash-64"\n')
    result = runner.invoke(main, ["--config", str(cfg), "build", "--out", str(tmp_path / "site")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith("Error: ") and "'theme'" in result.output
    assert not (tmp_path / "site").exists()


def test_source_display_name_is_its_own_key_not_the_html_title_selector(tmp_path):
    cfg = tmp_path / "digest.toml"
    cfg.write_text(
        '[[source]]\nname = "lab"\nkind = "html"\nurl = "https://lab.test/"\nitem = "li"\ntitle = "h2"\nlink = "a"\n'
        'display_name = "The Lab"\n[[source]]\nname = "plain"\nkind = "rss"\nurl = "https://p.test/feed"\n'
    )
    config = load_config(cfg)
    assert config.source("lab").selectors["title"] == "h2" and config.source("lab").display_name == "The Lab"
    assert dict(config.site.source_titles) == {"lab": "The Lab"}
