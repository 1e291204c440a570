from pathlib import Path

import pytest

from digest.config import load_config, resolve_config_path
from digest.errors import ConfigError
from tests.conftest import ROOT, write_config


def test_default_config_loads_and_follows_the_five_seed_blogs():
    config = load_config(ROOT / "data" / "digest.toml")
    kinds = [s.kind for s in config.sources]
    assert kinds.count("arxiv") >= 3
    blogs = {s.name for s in config.sources if s.kind != "arxiv"}
    assert blogs == {"larql-lab", "findings-links", "deep-dives", "ai-explained", "cognaptus-insights"}
    assert config.topics_file == (ROOT / "data" / "topics.toml").resolve()


def test_config_path_option_beats_env(monkeypatch, tmp_path):
    monkeypatch.setenv("DIGEST_CONFIG", str(tmp_path / "env.toml"))
    assert resolve_config_path("opt.toml") == Path("opt.toml")
    assert resolve_config_path(None) == tmp_path / "env.toml"


@pytest.mark.parametrize(
    "source, message",
    [
        ('[[source]]\nname = "a"\nkind = "gopher"\nurl = "https://x.test/"\n', "source[0] 'a': field 'kind'"),
        ('[[source]]\nname = "a"\nkind = "rss"\n', "source[0] 'a': field 'url' is required"),
        ('[[source]]\nname = "a"\nkind = "rss"\nurl = "ftp://x.test/f"\n', "field 'url' must be an http(s) URL"),
        ('[[source]]\nname = "a"\nkind = "arxiv"\n', "field 'query' is required"),
        ('[[source]]\nname = "a"\nkind = "html"\nurl = "https://x.test/"\n', "field 'item'"),
        ('[[source]]\nname = "Bad Name"\nkind = "rss"\nurl = "https://x.test/"\n', "source[0]: field 'name'"),
        ('[[source]]\nname = "a"\nkind = "rss"\nurl = "https://x.test/"\ncolour = 1\n', "unknown field 'colour'"),
        ('[[source]]\nname = "a"\nkind = "rss"\nurl = "https://x.test/"\nmin_interval_s = "x"\n', "min_interval_s"),
    ],
)
def test_bad_source_names_file_entry_and_field(tmp_path, source, message):
    cfg = write_config(tmp_path, source)
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert str(cfg) in str(err.value)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_malformed_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[site\ntitle=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.toml")


def test_wrong_type_in_fetch_table(tmp_path):
    cfg = write_config(tmp_path, "", extra="[newsletter]\nsender = 3\n")
    with pytest.raises(ConfigError, match=r"\[newsletter\]: field 'sender' must be str"):
        load_config(cfg)


def test_site_author_and_description(tmp_path):
    cfg = write_config(tmp_path, "")
    site = load_config(cfg).site
    assert (site.author, site.description, site.feed_author) == ("", "", "Test Digest")  # the title by default
    cfg.write_text(cfg.read_text().replace("[site]\n", '[site]\nauthor = "The Lab"\ndescription = "Our reading"\n'))
    site = load_config(cfg).site
    assert (site.feed_author, site.description) == ("The Lab", "Our reading")
    cfg.write_text(cfg.read_text().replace('author = "The Lab"', "author = 3"))
    with pytest.raises(ConfigError, match="author"):
        load_config(cfg)


@pytest.mark.parametrize(
    "table, setting, message",
    [
        ("[fetch]", "timeout_s = nan", "field 'timeout_s' must be a finite number > 0"),
        ("[fetch]", "timeout_s = inf", "field 'timeout_s' must be a finite number > 0"),
        ("[fetch]", "max_entries = -1", "field 'max_entries' must be a finite number >= 1"),
        ("[fetch]", "max_bytes = -5", "field 'max_bytes' must be a finite number >= 1"),
        ("[fetch]", "arxiv_page_size = 0", "field 'arxiv_page_size'"),
        ("[fetch]", "interval_min = 0", "field 'interval_min'"),
        ("[fetch]", 'user_agent = ""', "field 'user_agent' must be one non-empty line"),
        ("[fetch]", 'user_agent = "Digést/1"', "field 'user_agent' must be one non-empty line of printable ASCII"),
        ("[fetch]", 'arxiv_api = "https://a.test/query"', "field 'arxiv_api' must be an http(s) URL with one '{}'"),
        ("[smtp]", "timeout_s = -3", "[smtp]: field 'timeout_s'"),
    ],
)
def test_numbers_and_urls_are_range_checked_at_load(tmp_path, table, setting, message):
    cfg = write_config(tmp_path, "")
    key = setting.split(" =")[0]
    text = "\n".join(line for line in cfg.read_text().splitlines() if line.strip().split(" =")[0] != key)
    cfg.write_text(text.replace(table, f"{table}\n{setting}") if table in text else f"{text}\n{table}\n{setting}\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert message in str(err.value) and str(cfg) in str(err.value)


def test_a_source_interval_of_nan_is_refused(tmp_path):
    cfg = write_config(
        tmp_path, '[[source]]\nname = "a"\nkind = "rss"\nurl = "https://x.test/"\nmin_interval_s = nan\n'
    )
    with pytest.raises(ConfigError, match="field 'min_interval_s' must be a finite number"):
        load_config(cfg)
