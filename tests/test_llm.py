"""LLMClient and the response cache, offline: answers come from litellm's own mock_response path."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# Before litellm is imported anywhere in this process: no price-list download at import.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from tracefix.debugger.cache import ResponseCache, request_key  # noqa: E402
from tracefix.config import Config  # noqa: E402
from tracefix.errors import UserError  # noqa: E402
from tracefix.debugger.llm import BudgetExhausted, LLMClient, ModelUnavailable, count_tokens  # noqa: E402

LOCAL = "http://127.0.0.1:8080/v1"
MESSAGES = [{"role": "system", "content": "You judge code."}, {"role": "user", "content": "Is block 1 right?"}]


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to reach the network fails the test loudly instead of hanging or passing by luck."""
    attempts: list[object] = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    yield attempts
    assert attempts == [], "the test tried to reach the network"


def local_config(tmp_path: Path, **overrides) -> Config:
    settings = dict(model="openai/x", api_base=LOCAL, cache_dir=tmp_path / "cache", request_timeout=0.01)
    settings.update(overrides)
    return Config(**settings)


def client(config: Config, mocks: list[str] | None = None, **kwargs) -> LLMClient:
    sleeps: list[float] = []
    built = LLMClient(config, mock_responses=mocks, sleep=sleeps.append, **kwargs)
    built.sleeps = sleeps  # type: ignore[attr-defined]
    return built


def test_mock_answer_comes_back_as_a_reply_with_usage(tmp_path):
    llm = client(local_config(tmp_path, cache_dir=None), ["block 1 is fine"])
    reply = llm.complete(MESSAGES, purpose="verdicts")
    assert reply.text == "block 1 is fine"
    assert reply.cached is False
    assert reply.model == "openai/x"
    assert reply.prompt_tokens > 0 and reply.completion_tokens > 0
    assert reply.cost == 0.0  # litellm has no price for a local model
    assert llm.usage.calls == 1 and llm.usage.cached_calls == 0
    assert llm.usage.prompt_tokens == reply.prompt_tokens


def test_known_model_costs_money_by_litellms_price_list(tmp_path):
    llm = client(Config(model="gpt-4o-mini", cache_dir=None), ["ok"])
    reply = llm.complete(MESSAGES, purpose="verdicts")
    assert reply.cost > 0
    assert llm.usage.cost == pytest.approx(reply.cost)


def test_second_identical_call_is_served_from_the_cache(tmp_path):
    llm = client(local_config(tmp_path), ["first answer"])  # one mock only: a second request would fail
    first = llm.complete(MESSAGES, purpose="verdicts")
    second = llm.complete(MESSAGES, purpose="a different purpose")
    assert second.text == first.text == "first answer"
    assert second.cached is True and second.cost == 0.0
    assert llm.usage.calls == 2 and llm.usage.cached_calls == 1
    assert len(list((tmp_path / "cache").glob("*.json"))) == 1


def test_recorded_cache_replays_in_a_new_client_without_a_model(tmp_path):
    client(local_config(tmp_path), ["recorded"]).complete(MESSAGES, purpose="verdicts")
    replay = client(local_config(tmp_path), [])  # no mocks left: only the cache can answer
    assert replay.complete(MESSAGES, purpose="verdicts").text == "recorded"


def test_cache_key_ignores_purpose_and_api_base_but_not_model_or_temperature(tmp_path):
    base = request_key("openai/x", MESSAGES, 0.0, 1024)
    assert base == request_key("openai/x", list(MESSAGES), 0, 1024)
    assert base != request_key("openai/y", MESSAGES, 0.0, 1024)
    assert base != request_key("openai/x", MESSAGES, 0.7, 1024)
    assert base != request_key("openai/x", MESSAGES, 0.0, 512)
    assert base != request_key("openai/x", MESSAGES, 0.0, 1024, variant=1)


def test_variants_of_one_request_are_cached_apart(tmp_path):
    llm = client(local_config(tmp_path), ["candidate A", "candidate B"])
    assert llm.complete(MESSAGES, purpose="patch", variant=0).text == "candidate A"
    assert llm.complete(MESSAGES, purpose="patch", variant=1).text == "candidate B"
    assert llm.complete(MESSAGES, purpose="patch", variant=1).cached is True


def test_a_seed_goes_with_each_request_one_per_variant_and_into_the_cache_key(tmp_path, monkeypatch):
    import litellm

    sent = []
    real = litellm.completion
    monkeypatch.setattr(litellm, "completion", lambda **kwargs: sent.append(kwargs.get("seed", "none")) or real(**kwargs))
    seeded = client(local_config(tmp_path, seed=7), ["A", "B"])
    seeded.complete(MESSAGES, purpose="patch", variant=0)
    seeded.complete(MESSAGES, purpose="patch", variant=1)
    unseeded = client(local_config(tmp_path), ["C"])  # the same cache folder
    assert unseeded.complete(MESSAGES, purpose="patch").text == "C"  # not the seeded answer from the cache
    assert sent == [7, 8, "none"]
    assert request_key("openai/x", MESSAGES, 0.0, 1024, seed=7) != request_key("openai/x", MESSAGES, 0.0, 1024)
    assert request_key("openai/x", MESSAGES, 0.0, 1024, seed=None) == request_key("openai/x", MESSAGES, 0.0, 1024)


def test_cache_off_sends_every_request(tmp_path):
    llm = client(local_config(tmp_path, cache_dir=None), ["one", "two"])
    assert [llm.complete(MESSAGES, purpose="p").text for _ in range(2)] == ["one", "two"]
    assert not (tmp_path / "cache").exists()


def test_corrupt_cache_file_is_a_miss_and_gets_rewritten(tmp_path):
    cache = ResponseCache(tmp_path / "cache")
    key = request_key("openai/x", MESSAGES, 0.0, 1024)
    cache.directory.mkdir()
    cache.path_for(key).write_text("{not json", encoding="utf-8")
    llm = client(local_config(tmp_path), ["fresh"])
    assert llm.complete(MESSAGES, purpose="p").text == "fresh"
    assert cache.get(key)["text"] == "fresh"
    assert [p.name for p in cache.directory.iterdir()] == [f"{key}.json"]  # no temp files left behind


def test_timeout_is_retried_with_backoff_then_answered(tmp_path):
    llm = client(local_config(tmp_path, retries=2), ["litellm.Timeout", "litellm.Timeout", "finally"])
    assert llm.complete(MESSAGES, purpose="p").text == "finally"
    assert llm.sleeps == [1.0, 2.0]


def test_timeouts_past_the_retries_make_the_model_unavailable(tmp_path):
    llm = client(local_config(tmp_path, retries=1), ["litellm.Timeout", "litellm.Timeout"])
    with pytest.raises(ModelUnavailable) as info:
        llm.complete(MESSAGES, purpose="p")
    message = str(info.value)
    assert message.startswith(f"model openai/x at {LOCAL} is unreachable after 2 attempt(s):")
    assert "timeout" in message.lower() and "\n" not in message
    assert isinstance(info.value, UserError)


@pytest.mark.parametrize(
    "error",
    ["litellm.RateLimitError", "litellm.InternalServerError", "litellm.APIConnectionError", "litellm.ServiceUnavailableError"],
)
def test_transient_errors_are_retried(tmp_path, error):
    llm = client(local_config(tmp_path, retries=1), [error, "recovered"])
    assert llm.complete(MESSAGES, purpose="p").text == "recovered"
    assert llm.sleeps == [1.0]


def test_rejected_key_tells_which_variable_to_set(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    llm = client(Config(model="gpt-4o-mini", cache_dir=None, retries=3), ["litellm.AuthenticationError"])
    with pytest.raises(UserError, match="set OPENAI_API_KEY") as info:
        llm.complete(MESSAGES, purpose="p")
    assert not isinstance(info.value, ModelUnavailable)
    assert llm.sleeps == []  # not retried


def test_missing_key_is_reported_before_any_request(tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    llm = client(Config(model="anthropic/claude-3-5-haiku-20241022", cache_dir=None))
    with pytest.raises(UserError, match="no API key for model .*: set ANTHROPIC_API_KEY"):
        llm.complete(MESSAGES, purpose="p")


def test_api_key_env_names_the_variable_to_read(tmp_path, monkeypatch):
    monkeypatch.delenv("MY_KEY", raising=False)
    llm = client(local_config(tmp_path, api_key_env="MY_KEY"), ["x"])
    with pytest.raises(UserError, match="set MY_KEY"):
        llm.complete(MESSAGES, purpose="p")


def test_context_window_overflow_asks_for_a_smaller_token_budget(tmp_path):
    llm = client(local_config(tmp_path), ["litellm.ContextWindowExceededError"])
    with pytest.raises(UserError, match="token_budget"):
        llm.complete(MESSAGES, purpose="p")


def test_no_model_configured_is_an_error_naming_the_fix():
    with pytest.raises(UserError, match="no model configured: pass --model or set TRACEFIX_MODEL"):
        LLMClient(Config())


def test_used_up_mocks_fail_instead_of_reaching_a_model(tmp_path):
    llm = client(local_config(tmp_path, cache_dir=None), ["only one"])
    llm.complete(MESSAGES, purpose="p")
    with pytest.raises(UserError, match="mock responses are used up"):
        llm.complete(MESSAGES, purpose="p")


def test_mock_responses_can_come_from_config(tmp_path):
    llm = LLMClient(local_config(tmp_path, cache_dir=None, mock_responses=("from config",)))
    assert llm.complete("plain string prompt", purpose="p").text == "from config"


def test_spent_cost_budget_stops_further_requests_but_not_cache_hits(tmp_path):
    llm = client(Config(model="gpt-4o-mini", cache_dir=tmp_path / "c", cost_budget=0.0), ["a", "b"])
    with pytest.raises(BudgetExhausted, match="cost budget"):
        llm.complete(MESSAGES, purpose="p")
    generous = client(Config(model="gpt-4o-mini", cache_dir=tmp_path / "c", cost_budget=1e-9), ["a", "b"])
    generous.complete(MESSAGES, purpose="p")  # the first request is under budget, and costs more than it
    assert generous.complete(MESSAGES, purpose="p").cached is True
    with pytest.raises(BudgetExhausted):
        generous.complete([{"role": "user", "content": "another question"}], purpose="p")


def test_every_prompt_and_answer_is_logged_as_jsonl(tmp_path):
    log = tmp_path / "logs" / "log.jsonl"
    llm = client(local_config(tmp_path, retries=0), ["the answer", "litellm.Timeout"], log_path=log)
    llm.complete(MESSAGES, purpose="verdicts")
    llm.complete(MESSAGES, purpose="verdicts")  # cached
    with pytest.raises(ModelUnavailable):
        llm.complete([{"role": "user", "content": "other"}], purpose="patch")
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert [r["purpose"] for r in records] == ["verdicts", "verdicts", "patch"]
    assert records[0]["messages"] == MESSAGES and records[0]["response"] == "the answer"
    assert [r.get("cached") for r in records] == [False, True, None]
    assert "unreachable" in records[2]["error"]


def test_count_tokens_uses_the_models_tokenizer_offline():
    assert count_tokens("gpt-4o", "hello world") == 2
    assert count_tokens(None, "hello world") > 0
    # litellm would download a Hugging Face tokenizer for llama-3; the fixture fails the test if it tries
    assert count_tokens("ollama/llama-3-8b", "hello world") > 0
    assert count_tokens("gpt-4o", [{"role": "user", "content": "hello world"}]) > count_tokens("gpt-4o", "hello world")


def test_first_use_imports_litellm_quietly_and_offline(tmp_path):
    """In a fresh interpreter: importing debugger.llm does not import litellm, and a mocked call
    neither prints anything nor opens a socket."""
    script = textwrap.dedent(
        """
        import os, socket, sys
        os.environ.pop("LITELLM_LOCAL_MODEL_COST_MAP", None)
        attempts = []
        def refuse(*a, **k):
            attempts.append(a)
            raise OSError("offline")
        socket.socket.connect = refuse
        socket.getaddrinfo = refuse
        from tracefix.config import Config
        from tracefix.debugger.llm import LLMClient, count_tokens
        assert "litellm" not in sys.modules
        llm = LLMClient(Config(model="openai/x", api_base="http://127.0.0.1:8080/v1"), mock_responses=["hi"])
        text = llm.complete("hello", purpose="p").text
        count_tokens("ollama/llama-3-8b", "hello")
        sys.stderr.write(f"RESULT {text} {len(attempts)}\\n")
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITELLM")}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr.strip() == "RESULT hi 0"


def test_spent_token_budget_stops_the_next_request_and_says_which_budget(tmp_path):
    llm = client(local_config(tmp_path, cache_dir=None, budget_tokens=1), ["first", "second"])
    llm.complete(MESSAGES, purpose="p")  # under budget when it starts
    with pytest.raises(BudgetExhausted, match="token budget of 1 spent") as info:
        llm.complete(MESSAGES, purpose="p")
    assert info.value.budget == "tokens"
    assert not isinstance(info.value, UserError)  # the run ends with "no fix", not as the user's error


def test_spent_time_budget_stops_requests(tmp_path):
    llm = client(local_config(tmp_path, cache_dir=None, budget_seconds=0.0), ["never sent"])
    with pytest.raises(BudgetExhausted, match="time budget") as info:
        llm.complete(MESSAGES, purpose="p")
    assert info.value.budget == "seconds"


def test_an_unknown_model_name_is_reported_before_any_test_runs(fixture_copy):
    from conftest import run_cli

    root = fixture_copy("average")
    marker = root.parent / "tests-ran"
    (root / "tests" / "test_zz_marker.py").write_text(f"def test_marks():\n    open({str(marker)!r}, 'w').close()\n")
    result = run_cli("fix", str(root), "--model", "no-such-model-xyz", "--cache", "off")
    assert result.returncode == 2
    assert "names no provider litellm knows" in result.stderr and "openai/<name>" in result.stderr
    assert "refused the request" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not marker.exists()


def test_a_missing_key_is_reported_before_any_test_runs(fixture_copy):
    from conftest import run_cli

    root = fixture_copy("average")
    marker = root.parent / "tests-ran"
    (root / "tests" / "test_zz_marker.py").write_text(f"def test_marks():\n    open({str(marker)!r}, 'w').close()\n")
    if os.environ.get("ANTHROPIC_API_KEY"):
        pytest.skip("this machine has an Anthropic key")
    result = run_cli("fix", str(root), "--model", "anthropic/claude-3-5-haiku-20241022", "--cache", "off")
    assert result.returncode == 2
    assert "set ANTHROPIC_API_KEY" in result.stderr
    assert not (root.parent / "tests-ran").exists()
