"""The packaged reference catalog: coverage, exact prices, validation errors, and the CLI listing."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal

import pytest

from tollgate.catalog import CatalogError, load_reference_catalog, parse_reference_catalog
from tollgate.catalog.reference import GUIDE_NODES

REQUIRED = {
    "deepseek-v3.2", "deepseek-r1", "kimi-k2.5", "qwen3.5-397b-a17b", "qwen3.5-35b-a3b", "qwen3-235b-a22b",
    "qwen3-coder-480b-a35b", "llama-3.1-8b", "llama-4-scout", "glm-4.7-flash", "minimax-m2.5", "bge-large",
    "gpt-5.4", "claude-opus-4.6",
}

GOOD_ENTRY = """
[[models]]
id = "alpha"
name = "Alpha"
capabilities = ["chat", "vision", "reasoning", "agent", "code", "long-context", "embeddings"]
input_usd_per_mtok = "0.10"
output_usd_per_mtok = "0.40"
ttft_ms = 100
source = "test"
"""
GUIDE = "\n[guide]\n" + "\n".join(f'{node} = "alpha"' for node in GUIDE_NODES) + "\n"


def _catalog_text(entry: str = GOOD_ENTRY, guide: str = GUIDE) -> str:
    return "schema = 1\n" + entry + guide


@pytest.fixture(scope="module")
def catalog():
    return load_reference_catalog()


def test_catalog_covers_the_required_models_with_sources(catalog):
    ids = {m.id for m in catalog}
    assert REQUIRED <= ids
    for model in catalog:
        assert model.source.strip(), model.id
        assert model.capabilities, model.id


def test_prices_are_exact_nanos_per_million(catalog):
    deepseek = catalog.get("deepseek-v3.2")
    assert deepseek.input_per_mtok == 270_000_000
    assert deepseek.output_per_mtok == 1_100_000_000
    assert catalog.get("qwen3.5-397b-a17b").input_per_mtok == 540_000_000
    assert catalog.get("qwen3.5-35b-a3b").input_per_mtok == 220_000_000
    assert catalog.get("gpt-5.4").input_per_mtok == 2_500_000_000
    assert catalog.get("claude-opus-4.6").input_per_mtok == 5_000_000_000
    assert catalog.get("llama-3.1-8b").input_per_mtok == 20_000_000
    for model in catalog:
        for price in (model.input_per_mtok, model.output_per_mtok):
            assert price is None or isinstance(price, int)


def test_published_scores_and_speeds(catalog):
    qwen = catalog.get("qwen3.5-397b-a17b")
    assert (qwen.score("mmlu_pro"), qwen.score("gpqa"), qwen.score("livecodebench")) == (
        Decimal("87.8"), Decimal("88.4"), Decimal("83.6"))
    assert qwen.speed_tokens_per_s == 84
    assert catalog.get("kimi-k2.5").speed_tokens_per_s == 334
    assert catalog.get("deepseek-r1").score("hle") == Decimal("50.2")
    assert catalog.get("qwen3-coder-480b-a35b").score("swe_bench_verified") == Decimal("69.6")
    # Unknown figures are absent, not invented.
    assert catalog.get("kimi-k2.5").input_per_mtok is None
    assert catalog.get("qwen3-235b-a22b").score("mmlu_pro") is None


def test_lookup_by_alias_is_case_insensitive(catalog):
    assert catalog.get("DeepSeek-Chat").id == "deepseek-v3.2"
    assert catalog.get("kimi-2.5").id == "kimi-k2.5"
    with pytest.raises(KeyError, match="no reference model"):
        catalog.get("gpt-2")


def test_guide_picks_have_the_needed_capability(catalog):
    for node, capability in GUIDE_NODES.items():
        assert catalog.guide_pick(node).has(capability), node
    assert catalog.guide_pick("images").id == "llama-4-scout"
    assert catalog.guide_pick("general").id == "deepseek-v3.2"


def test_a_good_minimal_catalog_parses():
    parsed = parse_reference_catalog(_catalog_text())
    assert parsed.get("alpha").output_per_mtok == 400_000_000


@pytest.mark.parametrize(
    ("change", "entry_text", "key_text"),
    [
        (('input_usd_per_mtok = "0.10"', 'input_usd_per_mtok = "0.1x"'), "'alpha'", "'input_usd_per_mtok'"),
        (('input_usd_per_mtok = "0.10"', 'input_usd_per_mtok = "-1"'), "'alpha'", "'input_usd_per_mtok'"),
        (('ttft_ms = 100', 'ttft_ms = 0'), "'alpha'", "'ttft_ms'"),
        (('ttft_ms = 100', 'ttft_ms = 100\ncontext = 5'), "'alpha'", "context"),
        (('"embeddings"]', '"embeddings", "telepathy"]'), "'alpha'", "'capabilities'"),
        (('source = "test"', 'source = "test"\n[models.benchmarks]\nmmlu_pro = 101'), "'alpha'", "benchmarks.mmlu_pro"),
        (('source = "test"', 'source = "test"\n[models.benchmarks]\nvibes = 50'), "'alpha'", "benchmarks.vibes"),
        (('source = "test"', 'source = ""'), "'alpha'", "'source'"),
    ],
)
def test_bad_entries_name_the_entry_and_key(change, entry_text, key_text):
    old, new = change
    text = _catalog_text(GOOD_ENTRY.replace(old, new))
    with pytest.raises(CatalogError) as info:
        parse_reference_catalog(text)
    message = str(info.value)
    assert entry_text in message and key_text in message, message


def test_duplicate_alias_across_entries_is_refused():
    second = GOOD_ENTRY.replace('id = "alpha"', 'id = "beta"\naliases = ["ALPHA"]')
    with pytest.raises(CatalogError, match="'beta'.*'aliases'.*already used by 'alpha'"):
        parse_reference_catalog(_catalog_text(GOOD_ENTRY + second))


def test_guide_must_point_at_a_capable_known_model():
    with pytest.raises(CatalogError, match="guide: key 'images'.*'nobody'"):
        parse_reference_catalog(_catalog_text(guide=GUIDE.replace('images = "alpha"', 'images = "nobody"')))
    chat_only = GOOD_ENTRY.replace('"chat", "vision", "reasoning", "agent", "code", "long-context", "embeddings"',
                                   '"chat"')
    with pytest.raises(CatalogError, match="guide: key 'images'.*lacks the 'vision' capability"):
        parse_reference_catalog(_catalog_text(chat_only))


def test_broken_toml_and_schema_are_clear():
    with pytest.raises(CatalogError, match="not valid TOML"):
        parse_reference_catalog("schema = = 1")
    with pytest.raises(CatalogError, match="'schema' must be 1"):
        parse_reference_catalog(_catalog_text().replace("schema = 1", "schema = 2"))


def test_cli_lists_the_catalog_as_json_and_text(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tollgate", "models", "catalog", "--json"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    by_id = {m["id"]: m for m in data["models"]}
    assert REQUIRED <= set(by_id)
    assert by_id["deepseek-v3.2"]["input_price"] == {"usd_per_mtok": "0.27", "nanos_per_mtok": 270_000_000}
    assert by_id["kimi-k2.5"]["input_price"] is None
    text = subprocess.run([sys.executable, "-m", "tollgate", "models", "catalog", "--capability", "embeddings"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert text.returncode == 0, text.stderr
    assert "bge-large" in text.stdout and "deepseek-v3.2" not in text.stdout


def test_cache_prices_and_tiers_carry_their_sources(catalog):
    deepseek = catalog.get("deepseek-v3.2")
    assert deepseek.cached_input_per_mtok == 70_000_000 and deepseek.cache_write_per_mtok is None
    assert "DeepSeek API pricing page" in deepseek.source
    opus = catalog.get("claude-opus-4.6")
    assert (opus.cached_input_per_mtok, opus.cache_write_per_mtok) == (500_000_000, 6_250_000_000)
    (tier,) = opus.tiers
    assert tier.above_tokens == 200_000 and tier.rates.input_per_mtok == 10_000_000_000
    assert tier.rates.output_per_mtok == 37_500_000_000 and tier.rates.cache_write_per_mtok == 12_500_000_000
    assert "Anthropic pricing page" in opus.source and opus.score("hle") == Decimal("40")  # tables after tiers
    for model in catalog:
        if model.price is not None and model.price.has_cache_prices:
            assert "pricing page" in model.source, model.id


CACHED_ENTRY = GOOD_ENTRY.replace('ttft_ms = 100', 'ttft_ms = 100\ncontext_tokens = 1000\n'
                                  'cached_input_usd_per_mtok = "0.01"\ncache_write_usd_per_mtok = "0.125"').replace(
    'source = "test"\n', 'source = "test"\n[[models.tiers]]\nabove_tokens = 500\ninput_usd_per_mtok = "0.20"\n'
    'output_usd_per_mtok = "0.80"\ncached_input_usd_per_mtok = "0.02"\ncache_write_usd_per_mtok = "0.25"\n')


def test_a_catalog_entry_with_cache_prices_and_a_tier_parses():
    (model,) = parse_reference_catalog(_catalog_text(CACHED_ENTRY)).models
    assert model.price.base.cached_input_per_mtok == 10_000_000
    assert model.price.rates_for(501).input_per_mtok == 200_000_000


@pytest.mark.parametrize(
    ("old", "new", "key_text"),
    [
        ('cached_input_usd_per_mtok = "0.01"', 'cached_input_usd_per_mtok = "1"', "'cached_input_usd_per_mtok'"),
        ('cache_write_usd_per_mtok = "0.125"', 'cache_write_usd_per_mtok = "0.05"', "'cache_write_usd_per_mtok'"),
        ('above_tokens = 500', 'above_tokens = 1000', "'tiers[0].above_tokens'"),
        ('above_tokens = 500\n', '', "'above_tokens' is required"),
        ('output_usd_per_mtok = "0.80"', 'output_usd_per_mtok = "0.30"', "'tiers[0].output_usd_per_mtok'"),
        ('cached_input_usd_per_mtok = "0.02"\n', '', "'tiers[0].cached_input_usd_per_mtok'"),
        ('cache_write_usd_per_mtok = "0.25"', 'cache_write_usd_per_mtok = "0.25"\nrebate = 1', "unknown key"),
        ('output_usd_per_mtok = "0.40"\n', '', "need both"),
    ],
)
def test_bad_cache_prices_and_tiers_name_the_entry_and_key(old, new, key_text):
    assert CACHED_ENTRY.count(old) == 1
    with pytest.raises(CatalogError) as info:
        parse_reference_catalog(_catalog_text(CACHED_ENTRY.replace(old, new)))
    message = str(info.value)
    assert "'alpha'" in message and key_text in message, message
