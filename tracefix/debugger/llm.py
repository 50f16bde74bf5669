"""Model access: one client over litellm, with a disk cache, retries, usage totals and a JSONL log.

litellm is imported on first use, not at module import: it costs ~3 s, and without
LITELLM_LOCAL_MODEL_COST_MAP it fetches its price list from the network while importing.
Tests run the real litellm code path offline through litellm's own `mock_response`.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from tracefix.debugger.cache import ResponseCache, request_key
from tracefix.config import Config
from tracefix.errors import InternalSignal, UserError

Messages = Sequence[Mapping[str, Any]]

# Sent when api_base points at an OpenAI-compatible server and no key is set: litellm's
# OpenAI client refuses to send a request without one, local servers ignore it.
PLACEHOLDER_KEY = "tracefix-no-key"
BACKOFF_CAP_S = 30.0


class ModelUnavailable(UserError):
    """The model could not be reached, after retries."""


class BudgetExhausted(InternalSignal):
    """A budget of the run is spent; no further model request is made. `budget` names it:
    "tokens", "usd" or "seconds". The run ends with what it has (no fix), not with an error."""

    def __init__(self, budget: str, message: str) -> None:
        super().__init__(message)
        self.budget = budget


@dataclass(frozen=True)
class Reply:
    text: str
    prompt_tokens: int
    completion_tokens: int
    cost: float  # USD; 0 for cached answers and for models litellm has no price for
    cached: bool
    model: str
    seconds: float


@dataclass(frozen=True)
class Usage:
    calls: int = 0  # answered requests, cached ones included
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    cached_calls: int = 0
    seconds: float = 0.0


@functools.cache
def _litellm() -> Any:
    """litellm, imported once and silenced: no network at import, no debug banners on stdout."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    if hasattr(litellm, "telemetry"):
        litellm.telemetry = False
    # Llama/Cohere token counting would download a Hugging Face tokenizer; use the bundled tiktoken instead.
    litellm.disable_hf_tokenizer_download = True
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return litellm


def count_tokens(model: str | None, text_or_messages: str | Messages) -> int:
    """Prompt tokens by the model's tokenizer where litellm bundles it (OpenAI, Anthropic), else tiktoken's
    cl100k_base. Never touches the network."""
    litellm = _litellm()
    if isinstance(text_or_messages, str):
        return int(litellm.token_counter(model=model or "", text=text_or_messages))
    return int(litellm.token_counter(model=model or "", messages=[dict(m) for m in text_or_messages]))


class LLMClient:
    """Answers chat requests for one configured model: cache first, then litellm with retries."""

    def __init__(
        self,
        config: Config,
        *,
        mock_responses: Sequence[str] | None = None,
        log_path: Path | None = None,
        sleep: Callable[[float], None] = time.sleep,
        backoff_s: float = 1.0,
    ) -> None:
        if not config.model:
            raise UserError("no model configured: pass --model or set TRACEFIX_MODEL")
        self.config = config
        self.model: str = config.model
        mocks = mock_responses if mock_responses is not None else config.mock_responses
        self._mocks: list[str] | None = None if mocks is None else list(mocks)
        self.log_path = log_path if log_path is not None else config.log_path
        self.cache = ResponseCache(config.cache_dir) if config.cache_dir is not None else None
        self._sleep = sleep
        self._backoff_s = backoff_s
        self._usage = Usage()
        self._started = time.perf_counter()  # budget_seconds counts from here: the run starts with its client

    @property
    def usage(self) -> Usage:
        return self._usage

    @property
    def where(self) -> str:
        """The model and, if set, its server, as error messages name them."""
        return f"{self.model} at {self.config.api_base}" if self.config.api_base else self.model

    def complete(self, messages: str | Messages, *, purpose: str, variant: int = 0,
                 temperature: float | None = None, max_tokens: int | None = None) -> Reply:
        """The model's answer to `messages`.

        `purpose` labels the request in the log ("verdicts", "patch", ...). `variant` > 0 asks
        for another sample of the same request, cached separately (several patch candidates).
        `temperature` overrides the configured one for this request (resampling a retry);
        `max_tokens` lowers the configured answer limit for it (a verdict list needs less).
        """
        temp = self.config.temperature if temperature is None else temperature
        limit = self.config.max_tokens if max_tokens is None else min(max_tokens, self.config.max_tokens)
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        chat = [dict(m) for m in messages]
        seed = None if self.config.seed is None else self.config.seed + variant
        key = request_key(self.model, chat, temp, limit, variant, seed)
        started = time.monotonic()
        entry = self.cache.get(key) if self.cache is not None else None
        if entry is not None:
            reply = Reply(
                text=entry["text"],
                prompt_tokens=int(entry.get("prompt_tokens", 0)),
                completion_tokens=int(entry.get("completion_tokens", 0)),
                cost=0.0,
                cached=True,
                model=str(entry.get("model", self.model)),
                seconds=time.monotonic() - started,
            )
            self._count(reply)
            self._log(purpose, chat, reply=reply, key=key, max_tokens=limit)
            return reply

        self._check_budget()
        try:
            reply = self._request(chat, temp, limit, seed)
        except UserError as exc:
            self._log(purpose, chat, error=str(exc), key=key, max_tokens=limit)
            raise
        if self.cache is not None:
            self.cache.put(
                key,
                {
                    "model": reply.model,
                    "messages": chat,
                    "temperature": temp,
                    "max_tokens": limit,
                    "variant": variant,
                    "seed": seed,
                    "text": reply.text,
                    "prompt_tokens": reply.prompt_tokens,
                    "completion_tokens": reply.completion_tokens,
                    "cost": reply.cost,
                },
            )
        self._count(reply)
        self._log(purpose, chat, reply=reply, key=key, max_tokens=limit)
        return reply

    # --- the request ----------------------------------------------------------------------------

    def check_ready(self) -> None:
        """A UserError now, before any test runs, for what would make the first request fail
        anyway: no model, a model name litellm cannot route to a provider, a missing key."""
        litellm = _litellm()
        try:
            litellm.get_llm_provider(self.model, api_base=self.config.api_base)
        except Exception:  # litellm raises its BadRequestError "LLM Provider NOT provided"
            raise UserError(
                f"model {self.model!r} names no provider litellm knows: write it as provider/model "
                "(openai/gpt-4o-mini, anthropic/claude-..., ollama/qwen2.5-coder), or openai/<name> with "
                "--api-base for an OpenAI-compatible server"
            ) from None
        self._api_key(litellm)  # raises when the provider's key variable is unset

    def _request(self, chat: list[dict[str, Any]], temperature: float, max_tokens: int,
                 seed: int | None = None) -> Reply:
        litellm = _litellm()
        started = time.monotonic()  # after the import: its ~3 s is not the model's time
        import openai  # litellm's own dependency; its exceptions subclass openai's

        transient = (
            litellm.Timeout,
            litellm.APIConnectionError,
            litellm.RateLimitError,
            litellm.InternalServerError,
            litellm.ServiceUnavailableError,
        )
        kwargs = self._request_kwargs(litellm, temperature, max_tokens)
        if seed is not None:
            kwargs["seed"] = seed
        attempts = self.config.retries + 1
        for attempt in range(attempts):
            try:
                response = litellm.completion(messages=chat, **kwargs, **self._next_mock(litellm))
            except litellm.AuthenticationError as exc:
                raise UserError(
                    f"model {self.where} rejected the API key ({_one_line(exc)}): "
                    f"set {self._key_variables(litellm)}"
                ) from None
            except litellm.ContextWindowExceededError as exc:
                raise UserError(
                    f"the prompt does not fit model {self.model}'s context window: "
                    f"lower token_budget ({_one_line(exc)})"
                ) from None
            except transient as exc:
                if attempt + 1 == attempts:
                    raise ModelUnavailable(
                        f"model {self.where} is unreachable after {attempts} attempt(s): {_one_line(exc)}"
                    ) from None
                self._sleep(min(self._backoff_s * 2**attempt, BACKOFF_CAP_S))
            except openai.APIError as exc:  # the base of every litellm provider error
                raise UserError(f"model {self.where} refused the request: {_one_line(exc)}") from None
            else:
                return self._reply_from(litellm, response, started)
        raise AssertionError("unreachable")

    def _request_kwargs(self, litellm: Any, temperature: float, max_tokens: int) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "temperature": temperature,
            "max_tokens": max_tokens,
            # a float: litellm's mock timeout only sleeps for float timeouts
            "timeout": float(self.config.request_timeout),
            "max_retries": 0,  # retries are ours, with backoff; the OpenAI client would add its own
            "drop_params": True,  # models that reject temperature (o1, ...) get the request without it
        }
        if self.config.api_base:
            kwargs["api_base"] = self.config.api_base
        api_key = self._api_key(litellm)
        if api_key is not None:
            kwargs["api_key"] = api_key
        return kwargs

    def _api_key(self, litellm: Any) -> str | None:
        """The key to pass explicitly; None lets litellm read the provider's own variable."""
        if self.config.api_key_env:
            key = os.environ.get(self.config.api_key_env)
            if not key:
                raise UserError(f"no API key for model {self.model}: set {self.config.api_key_env}")
            return key
        if self._mocks is not None:
            return None  # litellm's mock path needs no key
        missing = self._missing_keys(litellm)
        if self.config.api_base:
            return PLACEHOLDER_KEY if missing else None
        if missing:
            raise UserError(f"no API key for model {self.model}: set {' or '.join(missing)}")
        return None

    def _missing_keys(self, litellm: Any) -> list[str]:
        """Provider key variables litellm expects and the environment lacks (base URLs and the like ignored)."""
        try:
            report = litellm.validate_environment(self.model)
        except Exception:  # unknown provider: let the request itself report the problem
            return []
        if report.get("keys_in_environment"):
            return []
        return [k for k in report.get("missing_keys", []) if k.endswith(("_API_KEY", "_TOKEN"))]

    def _key_variables(self, litellm: Any) -> str:
        if self.config.api_key_env:
            return self.config.api_key_env
        names = self._missing_keys(litellm)
        if not names:
            try:
                provider = litellm.get_llm_provider(self.model)[1]
            except Exception:
                provider = self.model.split("/", 1)[0]
            names = [f"{provider.upper()}_API_KEY"]
        return " or ".join(names) + " (or name the variable with api_key_env)"

    def _next_mock(self, litellm: Any) -> dict[str, Any]:
        """litellm's mock arguments for the next canned answer; {} when not mocking."""
        if self._mocks is None:
            return {}
        if not self._mocks:
            raise UserError("the mock responses are used up: the run asked the model more often than expected")
        mock = self._mocks.pop(0)
        if mock == "litellm.Timeout":
            # litellm sleeps for the request timeout, then raises litellm.Timeout
            return {"mock_response": "timeout", "mock_timeout": True}
        if mock.startswith("litellm.") and mock not in _MOCKS_LITELLM_RAISES:
            error = getattr(litellm, mock.removeprefix("litellm."), None)
            if isinstance(error, type) and issubclass(error, Exception):
                # an exception instance as mock_response: litellm's mock path raises it
                return {"mock_response": error(message=f"mock {mock}", llm_provider="openai", model=self.model)}
        # litellm ignores a falsy mock_response (and would call the real model): an empty
        # answer is served as a blank one, which is what an empty reply means to the parsers.
        return {"mock_response": mock or " "}

    def _reply_from(self, litellm: Any, response: Any, started: float) -> Reply:
        text = response.choices[0].message.content or ""
        usage = getattr(response, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        try:
            cost = float(litellm.completion_cost(completion_response=response) or 0.0)
        except Exception:  # litellm has no price for this model (local servers): count it as free
            cost = 0.0
        return Reply(
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost=cost,
            cached=False,
            model=self.model,
            seconds=time.monotonic() - started,
        )

    # --- bookkeeping ----------------------------------------------------------------------------

    def _check_budget(self) -> None:
        """Before every request: no model call starts once a budget of the run is spent."""
        spent = self._usage.prompt_tokens + self._usage.completion_tokens
        tokens = self.config.budget_tokens
        if tokens is not None and spent >= tokens:
            raise BudgetExhausted("tokens", f"token budget of {tokens} spent ({spent} tokens over "
                                            f"{self._usage.calls} calls): raise budget_tokens to continue")
        seconds = self.config.budget_seconds
        if seconds is not None and time.perf_counter() - self._started >= seconds:
            raise BudgetExhausted("seconds", f"time budget of {seconds:g}s spent: raise budget_seconds to continue")
        budget = self.config.cost_budget
        if budget is not None and self._usage.cost >= budget:
            raise BudgetExhausted(
                "usd", f"cost budget of ${budget:.4f} spent (${self._usage.cost:.4f} over {self._usage.calls} calls): "
                "raise cost_budget to continue"
            )

    def _count(self, reply: Reply) -> None:
        u = self._usage
        self._usage = Usage(
            calls=u.calls + 1,
            prompt_tokens=u.prompt_tokens + reply.prompt_tokens,
            completion_tokens=u.completion_tokens + reply.completion_tokens,
            cost=u.cost + reply.cost,
            cached_calls=u.cached_calls + int(reply.cached),
            seconds=u.seconds + reply.seconds,
        )

    def _log(
        self,
        purpose: str,
        chat: list[dict[str, Any]],
        *,
        key: str,
        max_tokens: int,
        reply: Reply | None = None,
        error: str | None = None,
    ) -> None:
        if self.log_path is None:
            return
        record: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "purpose": purpose,
            "model": self.model,
            "api_base": self.config.api_base,
            "temperature": self.config.temperature,
            "max_tokens": max_tokens,
            "key": key,
            "messages": chat,
        }
        if reply is not None:
            record.update(
                response=reply.text,
                prompt_tokens=reply.prompt_tokens,
                completion_tokens=reply.completion_tokens,
                cost=reply.cost,
                cached=reply.cached,
                seconds=round(reply.seconds, 4),
            )
        if error is not None:
            record["error"] = error
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


# Mock strings litellm's mock_response itself turns into exceptions.
_MOCKS_LITELLM_RAISES = frozenset(
    {"litellm.RateLimitError", "litellm.ContextWindowExceededError", "litellm.InternalServerError"}
)


def _one_line(exc: BaseException) -> str:
    """The first line of an exception message, without litellm's "litellm.X: " prefixes, bounded."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    # "litellm.InternalServerError: InternalServerError: OpenAIException - Connection error."
    while True:
        head, sep, rest = text.partition(": ")
        if not sep or " " in head or not head.removeprefix("litellm.").endswith(("Error", "Timeout", "Exception")):
            break
        text = rest
    return text[:300]
