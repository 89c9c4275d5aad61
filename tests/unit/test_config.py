import secrets

import pytest

from tollgate.config import ConfigError, load_config
from tollgate.config.defaults import LOCAL_CHAT_MODEL
from tollgate.config.schema import CATEGORIES


def write(tmp_path, text: str):
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_no_config_serves_the_bundled_models_and_shipped_plans():
    config = load_config(None, env={})
    assert [m.id for m in config.models][0] == LOCAL_CHAT_MODEL
    plans = {p.slug: p for p in config.plans}
    assert plans["standard"].budget_per_window == 140_000_000
    assert plans["standard"].window == 5 * 3600
    assert (plans["standard"].rpm, plans["standard"].tpm) == (60, 3333)
    assert plans["pro"].budget_per_window == 420_000_000
    assert config.server.database == "sqlite:///.tollgate/tollgate.db"
    # model `auto` works out of the box: every category routes to the bundled chat model
    assert {c: p for c, p in config.routes["auto"].table.items()} == {c: (LOCAL_CHAT_MODEL,) for c in CATEGORIES}


def test_default_routes_only_with_the_bundled_models(tmp_path):
    """A config of its own models gets no invented route table; one that only adds routes keeps its own."""
    own = load_config(write(tmp_path, '[[upstreams]]\nname = "u"\nbase_url = "http://x"\n[[models]]\nid = "m"\n'
                                      'upstream = "u"\ninput_per_mtok = "1"\noutput_per_mtok = "1"\n'), env={})
    assert own.routes == {}
    mine = load_config(write(tmp_path, f'[routes.cheap]\ngeneral = ["{LOCAL_CHAT_MODEL}"]\n'), env={})
    assert list(mine.routes) == ["cheap"]


def test_plan_defaults_are_applied(tmp_path):
    config = load_config(write(tmp_path, '[[plans]]\nslug = "lean"\nbudget_per_window = "0.01"\n'), env={})
    lean = {p.slug: p for p in config.plans}["lean"]
    assert (lean.window, lean.period_days, lean.name) == (5 * 3600, 30, "Lean")


def test_environment_overrides_the_file(tmp_path):
    path = write(tmp_path, '[server]\nport = 9000\nhost = "0.0.0.0"\n')
    token = "tga_" + secrets.token_urlsafe(32)
    config = load_config(path, env={"TOLLGATE_PORT": "9100", "TOLLGATE_ADMIN_TOKEN": token})
    assert config.server.port == 9100
    assert config.server.host == "0.0.0.0"
    assert config.server.admin_token == token


def test_a_full_config_is_read_exactly(tmp_path):
    path = write(tmp_path, """
[[upstreams]]
name = "vllm"
base_url = "http://10.0.0.5:8000/v1"
api_key_env = "VLLM_KEY"
timeout = 120

[[models]]
id = "qwen3-235b"
upstream = "vllm"
upstream_model = "Qwen/Qwen3-235B-A22B"
input_per_mtok = 0.27
output_per_mtok = "1.10"
context = 131072
capabilities = ["chat", "tools"]
aliases = ["qwen3"]

[[plans]]
slug = "team"
name = "Team"
price_monthly = 100
period_days = 30
window = "2s"
budget_per_window = 0.5
rpm = 300
tpm = 50000
models = ["qwen3"]
""")
    config = load_config(path, env={})
    model = config.models[0]
    assert (model.input_per_mtok, model.output_per_mtok) == (270_000_000, 1_100_000_000)
    assert model.upstream_model == "Qwen/Qwen3-235B-A22B"
    assert config.upstreams[0].timeout == 120
    team = {p.slug: p for p in config.plans}["team"]
    assert (team.window, team.budget_per_window, team.models) == (2, 500_000_000, ("qwen3",))
    assert {"standard", "pro", "team"} <= {p.slug for p in config.plans}


@pytest.mark.parametrize(
    "text, key",
    [
        ('[server]\nport = "eighty"\n', "server.port"),
        ('[server]\ndatabase = "mysql://x"\n', "server.database"),
        ('[server]\ndatabase = "postgresql://u@h/db"\nworkers = 2\n', 'redis = "redis://..."'),
        ('[server]\nbudget_store = "redis://localhost"\n', "server.redis needs"),
        ('[server]\nprot = 1\n', "server.prot"),
        ('[[upstreams]]\nname = "a"\nbase_url = "ftp://x"\n', "upstreams[0].base_url"),
        ('[[upstreams]]\nname = "a"\nbase_url = "http://x"\n[[models]]\nid = "m"\nupstream = "b"\n'
         'input_per_mtok = 1\noutput_per_mtok = 1\n', "models[0].upstream"),
        ('[[upstreams]]\nname = "a"\nbase_url = "http://x"\n[[models]]\nid = "m"\nupstream = "a"\n'
         'input_per_mtok = "cheap"\noutput_per_mtok = 1\n', "models[0].input_per_mtok"),
        ('[[plans]]\nslug = "x"\nbudget_per_window = 1\nwindow = "5 hours"\n', "plans[0].window"),
        ('[[plans]]\nslug = "x"\nwindow = "5h"\n', "plans[0].budget_per_window"),
        ('[routes.auto]\nsimple = ["nope"]\ngeneral = ["nope"]\n', "routes.auto"),
        ("not toml at all [", "not valid TOML"),
    ],
)
def test_a_bad_config_names_the_key_and_the_problem(tmp_path, text, key):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={})
    assert key in str(info.value)


def test_the_shipped_example_config_loads(tmp_path):
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "tollgate.example.toml"
    config = load_config(example, env={})
    assert config.models and config.plans and config.upstreams


CACHING_MODEL = """
[[upstreams]]
name = "u"
base_url = "http://x"
[[models]]
id = "m"
upstream = "u"
input_per_mtok = "3"
output_per_mtok = "15"
cached_input_per_mtok = "0.30"
cache_write_per_mtok = "3.75"
context = 1000000
[[models.tiers]]
above_tokens = 200000
input_per_mtok = "6"
output_per_mtok = "22.50"
cached_input_per_mtok = "0.60"
cache_write_per_mtok = "7.50"
"""


def test_cache_prices_and_long_context_tiers_are_read_exactly(tmp_path):
    model = load_config(write(tmp_path, CACHING_MODEL), env={}).models[0]
    base = model.price.base
    assert (base.input_per_mtok, base.output_per_mtok, base.cached_input_per_mtok, base.cache_write_per_mtok) == (
        3_000_000_000, 15_000_000_000, 300_000_000, 3_750_000_000)
    (tier,) = model.price.tiers
    assert tier.above_tokens == 200_000
    assert (tier.rates.input_per_mtok, tier.rates.output_per_mtok, tier.rates.cached_input_per_mtok,
            tier.rates.cache_write_per_mtok) == (6_000_000_000, 22_500_000_000, 600_000_000, 7_500_000_000)


def test_a_model_without_cache_prices_is_priced_flat(tmp_path):
    text = CACHING_MODEL.split("cached_input_per_mtok")[0] + "context = 8192\n"
    model = load_config(write(tmp_path, text), env={}).models[0]
    assert model.cached_input_per_mtok is None and model.cache_write_per_mtok is None and model.tiers == ()
    assert not model.price.has_cache_prices


@pytest.mark.parametrize(
    "change, key, words",
    [
        (('cached_input_per_mtok = "0.30"', 'cached_input_per_mtok = "30"'), "models[0].cached_input_per_mtok",
         "at most the input price"),
        (('cache_write_per_mtok = "3.75"', 'cache_write_per_mtok = "0.375"'), "models[0].cache_write_per_mtok",
         "at least the input price"),
        (('cached_input_per_mtok = "0.30"', 'cached_input_per_mtok = "-1"'), "models[0].cached_input_per_mtok",
         "negative"),
        (('cached_input_per_mtok = "0.60"\n', ''), "models[0].tiers[0].cached_input_per_mtok", "is required"),
        (('above_tokens = 200000', 'above_tokens = 1000000'), "models[0].tiers[0].above_tokens",
         "not below the model's context"),
        (('above_tokens = 200000', 'above_tokens = 0'), "models[0].tiers[0].above_tokens", "at least 1"),
        (('above_tokens = 200000\n', ''), "models[0].tiers[0].above_tokens", "is required"),
        (('output_per_mtok = "22.50"', 'output_per_mtok = "14"'), "models[0].tiers[0].output_per_mtok",
         "below the price under the threshold"),
        (('cache_write_per_mtok = "7.50"', 'cache_write_per_mtok = "7.50"\nwrite_per_mtok = 1'),
         "models[0].tiers[0].write_per_mtok", "unknown key"),
        (('cache_write_per_mtok = "7.50"\n', 'cache_write_per_mtok = "7.50"\n[[models.tiers]]'
          + CACHING_MODEL.split("[[models.tiers]]")[1].replace("200000", "100000")),
         "models[0].tiers[1].above_tokens", "ascending"),
    ],
)
def test_a_bad_price_names_the_key_and_the_problem(tmp_path, change, key, words):
    old, new = change
    assert CACHING_MODEL.count(old) == 1
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, CACHING_MODEL.replace(old, new)), env={})
    message = str(info.value)
    assert message.startswith(key + ":") and words in message, message


def test_a_tier_cannot_price_a_cache_part_its_model_does_not(tmp_path):
    text = CACHING_MODEL.replace('cache_write_per_mtok = "3.75"\n', "")
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={})
    assert str(info.value).startswith("models[0].tiers[0].cache_write_per_mtok: the model sets no")
