from __future__ import annotations

from pathlib import Path

import pytest

from tracefix.config import Config, load_config
from tracefix.errors import UserError


def write_pyproject(project: Path, body: str) -> Path:
    path = project / "pyproject.toml"
    path.write_text('[project]\nname = "demo"\n\n[tool.tracefix]\n' + body, encoding="utf-8")
    return path


def test_defaults_apply_without_pyproject_env_or_flags(tmp_path):
    config, sources, warnings = load_config(tmp_path, {}, environ={})
    assert config.model is None
    assert (config.temperature, config.max_tokens, config.request_timeout, config.retries) == (0.0, 1024, 60.0, 2)
    assert (config.test_timeout, config.run_timeout, config.max_iters, config.candidates) == (10.0, 300.0, 5, 1)
    assert (config.token_budget, config.cost_budget, config.strategy) == (6000, None, "default")
    assert config.apply is False and config.allow_dirty is False
    assert config.cache_dir == tmp_path.resolve() / ".tracefix" / "cache"
    assert set(sources.values()) == {"default"}
    assert warnings == []


def test_pyproject_values_override_defaults_and_are_typed(tmp_path):
    write_pyproject(
        tmp_path,
        'model = "openai/x"\nmax_iters = 3\ntemperature = 1\npytest_args = ["-x", "-k", "slow"]\n'
        'include = ["src/*"]\napply = true\ncache_dir = "cache"\n',
    )
    config, sources, _ = load_config(tmp_path, {}, environ={})
    assert config.model == "openai/x"
    assert config.max_iters == 3
    assert config.temperature == 1.0 and isinstance(config.temperature, float)
    assert config.pytest_args == ("-x", "-k", "slow")
    assert config.include == ("src/*",)
    assert config.apply is True
    assert config.cache_dir == tmp_path.resolve() / "cache"
    assert sources["model"] == "pyproject.toml"
    assert sources["retries"] == "default"


def test_kebab_case_keys_in_pyproject_are_accepted(tmp_path):
    write_pyproject(tmp_path, "max-iters = 2\nallow-dirty = true\n")
    config, sources, warnings = load_config(tmp_path, {}, environ={})
    assert config.max_iters == 2 and config.allow_dirty is True
    assert sources["allow_dirty"] == "pyproject.toml"
    assert warnings == []


def test_env_overrides_pyproject_and_flags_override_env(tmp_path):
    write_pyproject(tmp_path, 'model = "from-pyproject"\nmax_iters = 3\nstrategy = "flat"\n')
    environ = {"TRACEFIX_MODEL": "from-env", "TRACEFIX_MAX_ITERS": "7", "TRACEFIX_STRATEGY": "hierarchical"}
    config, sources, _ = load_config(tmp_path, {"model": "from-flag", "max_iters": None}, environ=environ)
    assert config.model == "from-flag"
    assert sources["model"] == "flag"
    assert config.max_iters == 7  # a None flag means "not given"
    assert sources["max_iters"] == "env TRACEFIX_MAX_ITERS"
    assert config.strategy == "hierarchical"


def test_env_values_are_parsed_to_the_field_type(tmp_path):
    environ = {
        "TRACEFIX_TEMPERATURE": "0.5",
        "TRACEFIX_APPLY": "yes",
        "TRACEFIX_ALLOW_DIRTY": "0",
        "TRACEFIX_PYTEST_ARGS": "-x -k 'not slow'",
        "TRACEFIX_EXCLUDE": "tests/*, build/*",
        "TRACEFIX_INCLUDE": '["src/a.py"]',
        "TRACEFIX_COST_BUDGET": "0.25",
        "TRACEFIX_CACHE_DIR": "off",
        "TRACEFIX_API_BASE": "http://127.0.0.1:8080/v1",
    }
    config, _, _ = load_config(tmp_path, {}, environ=environ)
    assert config.temperature == 0.5
    assert config.apply is True and config.allow_dirty is False
    assert config.pytest_args == ("-x", "-k", "not slow")
    assert config.exclude == ("tests/*", "build/*")
    assert config.include == ("src/a.py",)
    assert config.cost_budget == 0.25
    assert config.cache_dir is None
    assert config.api_base == "http://127.0.0.1:8080/v1"


def test_cache_off_in_pyproject_or_flag_disables_the_cache(tmp_path):
    write_pyproject(tmp_path, 'cache_dir = "off"\n')
    assert load_config(tmp_path, {}, environ={}).config.cache_dir is None
    tmp2 = tmp_path / "other"
    tmp2.mkdir()
    assert load_config(tmp2, {"cache_dir": "off"}, environ={}).config.cache_dir is None


def test_unknown_pyproject_key_is_a_warning_naming_the_key(tmp_path):
    write_pyproject(tmp_path, "max_iter = 3\n")
    config, _, warnings = load_config(tmp_path, {}, environ={})
    assert config.max_iters == 5
    assert len(warnings) == 1
    assert "'max_iter'" in warnings[0] and "max_iters" in warnings[0]  # names the key and the likely one


def test_wrong_type_in_pyproject_names_key_and_file(tmp_path):
    pyproject = write_pyproject(tmp_path, 'max_iters = "five"\n')
    with pytest.raises(UserError) as info:
        load_config(tmp_path, {}, environ={})
    message = str(info.value)
    assert "max_iters" in message and str(pyproject) in message and "integer" in message
    assert "\n" not in message


def test_bool_is_not_accepted_as_an_integer(tmp_path):
    write_pyproject(tmp_path, "retries = true\n")
    with pytest.raises(UserError, match="retries"):
        load_config(tmp_path, {}, environ={})


def test_unparsable_env_value_names_the_variable(tmp_path):
    with pytest.raises(UserError, match="TRACEFIX_MAX_ITERS must be an integer"):
        load_config(tmp_path, {}, environ={"TRACEFIX_MAX_ITERS": "many"})
    with pytest.raises(UserError, match="TRACEFIX_APPLY"):
        load_config(tmp_path, {}, environ={"TRACEFIX_APPLY": "perhaps"})


def test_out_of_range_value_names_its_source(tmp_path):
    with pytest.raises(UserError, match=r"strategy \(flag\)"):
        load_config(tmp_path, {"strategy": "random"}, environ={})
    with pytest.raises(UserError, match=r"candidates \(env TRACEFIX_CANDIDATES\)"):
        load_config(tmp_path, {}, environ={"TRACEFIX_CANDIDATES": "0"})


def test_invalid_toml_is_a_tracefix_error(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.tracefix\nmodel = 1\n", encoding="utf-8")
    with pytest.raises(UserError, match="not valid TOML"):
        load_config(tmp_path, {}, environ={})


def test_config_is_frozen():
    with pytest.raises(Exception):
        Config().model = "x"  # type: ignore[misc]
