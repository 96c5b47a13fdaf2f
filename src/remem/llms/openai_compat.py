"""An LLM client for any OpenAI-compatible ``/chat/completions`` endpoint (OpenAI, vLLM,
Ollama, llama.cpp server, LM Studio): timeouts, bounded retries, a concurrency limit."""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from remem.errors import ConfigError, LLMError
from remem.llms.base import ChatMessage, FormatRejected, Params, Reply, Usage
from remem.llms.chat import ChatLLM

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 409, 429})  # and every 5xx
FORMAT_WORDS = ("response_format", "json_schema", "json_object")
NOT_ABOUT_FORMAT = frozenset({401, 403, 404, 408, 409, 429})


class _Retry(Exception):
    """A failure worth retrying; ``after`` is the wait the server asked for, if any."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.after = after


class OpenAICompatLLM(ChatLLM):
    """POSTs chat requests to ``{base_url}/chat/completions``.

    ``timeout`` bounds each request's wait for an answer and ``connect_timeout`` its
    connection; 408/409/429, 5xx answers, timeouts and connection errors are retried up to
    ``max_retries`` times after an exponential backoff with jitter (``backoff`` doubling up
    to ``max_backoff`` seconds) or the server's ``Retry-After``, each retry logged at INFO.
    No call takes much longer than ``deadline`` seconds: a wait that would pass it raises
    ``LLMError`` instead. At most ``max_concurrency`` requests are in flight per client.
    ``max_tokens`` and ``temperature`` are defaults for every call. The API key is sent
    as a Bearer token and never logged or put into an error message. Nothing is sent
    until a call is made.
    """

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 120.0,
        connect_timeout: float = 10.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        deadline: float = 300.0,
        max_concurrency: int = 4,
        max_reasks: int = 2,
        start_mode: str = "json_schema",
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> None:
        super().__init__(max_reasks=max_reasks, start_mode=start_mode)
        try:
            import httpx
        except ImportError as exc:
            raise ConfigError("the openai LLM needs httpx: pip install 'remem[llm]'") from exc
        model, base_url = _checked_options(
            model, base_url, timeout, deadline, max_retries, max_concurrency
        )
        self.model = model
        self.model_id = f"openai:{model}"
        self.base_url = base_url.rstrip("/")
        self.timeout, self.connect_timeout, self.deadline = timeout, connect_timeout, deadline
        self.max_retries, self.backoff, self.max_backoff = max_retries, backoff, max_backoff
        self.max_concurrency = max_concurrency
        self._defaults = {"max_tokens": max_tokens, "temperature": temperature}
        self._secret = api_key or None
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=self.base_url, headers=headers)
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._httpx = httpx

    def __repr__(self) -> str:
        return f"OpenAICompatLLM(model={self.model!r}, base_url={self.base_url!r})"

    def _send(
        self, messages: list[ChatMessage], response_format: dict[str, Any] | None, params: Params
    ) -> Reply:
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        body.update({k: v for k, v in self._defaults.items() if v is not None})
        body.update(params)
        if response_format is not None:
            body["response_format"] = response_format
        data, requests = self._post(body, rejectable=response_format is not None)
        return _reply(data, requests, self._redact)

    def _post(self, body: dict[str, Any], *, rejectable: bool) -> tuple[dict[str, Any], int]:
        """The answer's JSON and the number of requests it took, retrying as configured."""
        deadline = time.monotonic() + self.deadline
        attempt = 1
        while True:
            try:
                return self._attempt(body, deadline, rejectable), attempt
            except _Retry as retry:
                self._wait_or_give_up(retry, attempt, deadline)
            except FormatRejected as exc:
                exc.requests = attempt
                raise
            attempt += 1

    def _attempt(self, body: dict[str, Any], deadline: float, rejectable: bool) -> dict[str, Any]:
        """One request, within what is left of the deadline."""
        httpx = self._httpx
        left = deadline - time.monotonic()
        if not self._slots.acquire(timeout=max(left, 0.0)):
            raise _Retry(f"no free request slot (max_concurrency={self.max_concurrency})")
        try:
            self.meter.add(Usage(requests=1))
            left = max(deadline - time.monotonic(), 0.05)
            timeout = httpx.Timeout(
                min(self.timeout, left), connect=min(self.connect_timeout, left)
            )
            response = self._client.post("/chat/completions", json=body, timeout=timeout)
        except httpx.TimeoutException as exc:
            raise _Retry(f"no answer in time ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise _Retry(
                f"connection failed ({type(exc).__name__}: {self._redact(str(exc))})"
            ) from exc
        finally:
            self._slots.release()
        return self._check(response, rejectable)

    def _check(self, response: httpx.Response, rejectable: bool) -> dict[str, Any]:
        """The JSON of a 200 answer; raises ``_Retry``, ``FormatRejected`` or ``LLMError``."""
        status: int = response.status_code
        snippet = self._redact(response.text[:300])
        if status == 200:
            try:
                data = response.json()
            except ValueError:
                data = None
            if not isinstance(data, dict):
                raise LLMError(
                    f"the LLM endpoint at {self.base_url} answered 200 without a JSON object: "
                    f"{snippet!r}; check that base_url points at an OpenAI-compatible API"
                )
            return data
        # llama-cpp-python answers 500 to a response_format it does not know: a retry
        # would fail the same way, so any error about the format means "use another mode"
        if rejectable and status not in NOT_ABOUT_FORMAT:
            text = response.text[:2000]
            if any(word in text for word in FORMAT_WORDS):
                raise FormatRejected(f"HTTP {status}: {snippet}")
        if status in RETRY_STATUSES or status >= 500:
            raise _Retry(f"HTTP {status}: {snippet}", retry_after(response.headers))
        raise LLMError(
            f"the LLM endpoint at {self.base_url} answered HTTP {status}: {snippet}; "
            f"{_hint(status)}",
            reason=f"HTTP {status}",
        )

    def _wait_or_give_up(self, retry: _Retry, attempt: int, deadline: float) -> None:
        """Sleep before the next attempt, or raise ``LLMError`` if there is none."""
        where = f"the LLM endpoint at {self.base_url}"
        if attempt > self.max_retries:
            raise LLMError(
                f"{where} failed {attempt} times, last: {retry.reason}; check that it is up "
                "and not overloaded, or raise max_retries",
                reason=retry.reason,
                transient=True,
            ) from retry
        delay = retry.after
        if delay is None:
            delay = backoff_delay(attempt, self.backoff, self.max_backoff)
        if time.monotonic() + delay > deadline:
            asked = " (the server asked for that wait)" if retry.after is not None else ""
            raise LLMError(
                f"{where} failed ({retry.reason}) and the next try, in {delay:.1f} s{asked}, "
                f"would pass the {self.deadline:g} s deadline; gave up after {attempt} attempts",
                reason=retry.reason,
                transient=True,
            ) from retry
        log.info(
            "%s failed (%s); retry %d of %d in %.2f s",
            where, retry.reason, attempt, self.max_retries, delay,
        )  # fmt: skip
        time.sleep(delay)

    def _redact(self, text: str) -> str:
        """``text`` without the API key (servers echo it in their error messages)."""
        return text.replace(self._secret, "***") if self._secret else text

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()


def backoff_delay(
    attempt: int, base: float, cap: float, rand: Callable[[], float] = random.random
) -> float:
    """Seconds to wait after failed ``attempt`` (1, 2, ...): ``base`` doubled per attempt,
    at most ``cap``, times a random factor in [0.5, 1) so clients do not retry in step."""
    return float(min(cap, base * 2 ** (attempt - 1)) * (0.5 + rand() / 2))


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The wait a 429/503 answer asks for, in seconds: ``retry-after-ms`` (OpenAI), else
    ``Retry-After`` as seconds or an HTTP date; ``None`` when absent or unreadable."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _reply(data: dict[str, Any], requests: int, redact: Callable[[str], str]) -> Reply:
    """A ``Reply`` from a chat completion's JSON."""
    try:
        choice = data["choices"][0]
        message = choice["message"]
        text = message.get("content")
        if text is not None and not isinstance(text, str):
            raise TypeError("content is not a string")
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise LLMError(
            f"the LLM endpoint's answer has no choices[0].message.content ({exc}): "
            f"{redact(str(data)[:300])}; check that it is an OpenAI-compatible chat API"
        ) from exc
    return Reply(
        text=text,
        usage=_usage(data.get("usage")),
        finish_reason=choice.get("finish_reason"),
        refusal=message.get("refusal"),
        requests=requests,
    )


def _usage(raw: Any) -> Usage:
    """Token counts from an answer's ``usage`` (zeros where a server sends none)."""
    if not isinstance(raw, dict):
        return Usage()

    def count(key: str) -> int:
        value = raw.get(key)
        return value if isinstance(value, int) and value >= 0 else 0

    prompt, completion = count("prompt_tokens"), count("completion_tokens")
    return Usage(prompt, completion, count("total_tokens") or prompt + completion)


def _hint(status: int) -> str:
    if status in (401, 403):
        return "check api_key (REMEM_LLM_API_KEY)"
    if status == 404:
        return "check base_url (it usually ends in /v1) and model"
    return "check the model name and the request options"


def _checked_options(
    model: str | None,
    base_url: str | None,
    timeout: float,
    deadline: float,
    max_retries: int,
    max_concurrency: int,
) -> tuple[str, str]:
    """``model`` and ``base_url``, once every option is checked."""
    if not model:
        raise ConfigError("the openai LLM needs model=<name> (REMEM_LLM_MODEL)")
    if not base_url or not base_url.startswith(("http://", "https://")):
        raise ConfigError(
            "the openai LLM needs base_url=<http(s) URL> (REMEM_LLM_BASE_URL), e.g. "
            "https://api.openai.com/v1 or http://localhost:11434/v1; nothing is sent by default"
        )
    if timeout <= 0 or deadline <= 0:
        raise ConfigError("timeout and deadline must be positive numbers of seconds")
    if max_retries < 0 or max_concurrency < 1:
        raise ConfigError("max_retries must be 0 or more and max_concurrency 1 or more")
    return model, base_url
