import secrets

import pytest

from tollgate.config import ConfigError, load_config
from tollgate.config.defaults import LOCAL_CHAT_MODEL


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
        ('[server]\ndatabase = "postgresql://u@h/db"\n', "not available in this version"),
        ('[server]\nbudget_store = "redis://localhost"\n', "not available in this version"),
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
