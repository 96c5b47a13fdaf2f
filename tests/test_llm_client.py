"""The OpenAI-compatible LLM client against a real local HTTP server speaking
/chat/completions, scripted per test; the structured-output helpers; the scripted fake
through the real registry."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import BaseModel

from remem.config import LLMConfig
from remem.errors import ConfigError, InvalidInputError, LLMError
from remem.llms.base import LLM, Mode, Reply, Usage
from remem.llms.openai_compat import backoff_delay, retry_after
from remem.llms.prompts import NAMES_VERSION, Names, names_messages
from remem.llms.scripted import ScriptedLLM, ScriptedRequest
from remem.llms.structured import extract_json, parse, schema_dict
from remem.registry import create_llm, llm_names, register_llm

KEY = "sk-test-4f9b2c1d-secret"
TEXT = "Ana met Bruno in Lisbon."

register_llm("scripted", ScriptedLLM)  # tests only: remem never registers the fake


@dataclass
class Answer:
    """What the fake server sends back for one request."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


Responder = Callable[[dict[str, Any]], Answer]


def chat(
    content: str | None, prompt: int = 10, completion: int = 5, finish: str = "stop"
) -> Answer:
    """A successful chat completion answer."""
    usage = {"prompt_tokens": prompt, "completion_tokens": completion,
             "total_tokens": prompt + completion}  # fmt: skip
    message = {"role": "assistant", "content": content}
    body = {"choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage}  # fmt: skip
    return Answer(body=body)


class FakeServer:
    """An OpenAI-compatible server: answers from ``script`` in order, then ``default``;
    records every request and the most requests it ever served at once."""

    def __init__(self) -> None:
        self.script: deque[Answer | Responder] = deque()
        self.default: Answer | Responder = chat('{"names": ["Ana", "Bruno", "Lisbon"]}')
        self.requests: list[dict[str, Any]] = []
        self.active = self.max_active = 0
        self.lock = threading.Lock()
        self.url = ""

    def answer(self, body: dict[str, Any]) -> Answer:
        with self.lock:
            item = self.script.popleft() if self.script else self.default
        return item(body) if callable(item) else item

    def bodies(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests]


class _Handler(BaseHTTPRequestHandler):
    server: Any

    def do_POST(self) -> None:
        fake: FakeServer = self.server.fake
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with fake.lock:
            fake.requests.append({"path": self.path, "body": body, "t": time.monotonic(),
                                  "auth": self.headers.get("Authorization")})  # fmt: skip
            fake.active += 1
            fake.max_active = max(fake.max_active, fake.active)
        try:
            answer = fake.answer(body)
            time.sleep(answer.delay)
        finally:
            # before answering: once the client has its answer it may send the next
            # request, which must not find this one still counted as active
            with fake.lock:
                fake.active -= 1
        self._send(answer)

    def _send(self, answer: Answer) -> None:
        raw = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
        try:
            self.send_response(answer.status)
            for name, value in {"Content-Type": "application/json", **answer.headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.fake = fake  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    yield fake
    httpd.shutdown()
    httpd.server_close()


def client(fake: FakeServer, **options: Any) -> LLM:
    """The client as an application builds it: through the registry, from a config."""
    options = {"backoff": 0.01, "max_backoff": 0.05, **options}
    return create_llm(LLMConfig(base_url=fake.url, model="tiny", api_key=KEY, options=options))


def rejecting(*modes: str, text: str = 'Sure! {"names": ["Ana"]} Hope that helps.') -> Responder:
    """A server that answers 400 to the ``response_format`` types in ``modes``."""

    def respond(body: dict[str, Any]) -> Answer:
        kind = (body.get("response_format") or {}).get("type", "text")
        if kind in modes:
            error = {"message": f"response_format type {kind!r} is not supported"}
            return Answer(400, {"error": error})
        return chat(text)

    return respond


# --- structured output --------------------------------------------------------------------


def test_json_schema_mode_returns_a_validated_object(server: FakeServer) -> None:
    llm = client(server)
    result = llm.structured(names_messages(TEXT), Names)
    assert isinstance(result.value, Names)
    assert result.value.names == ["Ana", "Bruno", "Lisbon"]
    assert (result.mode, result.attempts, result.model) == (Mode.JSON_SCHEMA, 1, "openai:tiny")
    [request] = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["auth"] == f"Bearer {KEY}"
    sent = request["body"]
    assert sent["model"] == "tiny"
    assert sent["messages"] == names_messages(TEXT)  # the schema is not repeated in the prompt
    fmt = sent["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "Names"
    assert fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["additionalProperties"] is False
    assert result.usage == Usage(10, 5, 15, calls=1, requests=1)


def test_a_server_without_json_schema_falls_back_and_the_mode_is_remembered(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.default = rejecting("json_schema", "json_object")
    llm = client(server)
    with caplog.at_level(logging.INFO, logger="remem"):
        first = llm.structured(names_messages(TEXT), Names)
    assert first.value.names == ["Ana"]  # the JSON object was found inside the prose
    assert (first.mode, first.attempts, first.usage.requests) == (Mode.TEXT, 1, 3)
    kinds = [(b.get("response_format") or {}).get("type") for b in server.bodies()]
    assert kinds == ["json_schema", "json_object", None]
    last_user = server.bodies()[-1]["messages"][-1]
    assert last_user["role"] == "user" and '"names"' in last_user["content"]
    assert "JSON schema" in last_user["content"]  # the schema travels in the prompt
    assert "using json_object mode from now on" in caplog.text
    second = llm.structured(names_messages("Bruno"), Names)
    assert second.mode is Mode.TEXT
    assert len(server.requests) == 4  # the second call went straight to text mode
    assert llm.usage().requests == 4 and llm.usage().calls == 2


def test_json_object_mode_puts_the_schema_in_the_prompt(server: FakeServer) -> None:
    server.default = rejecting("json_schema", text='{"names": ["Ana"]}')
    llm = client(server)
    assert llm.structured(names_messages(TEXT), Names).mode is Mode.JSON_OBJECT
    body = server.bodies()[-1]
    assert body["response_format"]["type"] == "json_object"
    assert body["response_format"]["schema"]["required"] == ["names"]
    assert "JSON schema" in body["messages"][-1]["content"]


def test_a_500_about_response_format_falls_back_without_retrying(server: FakeServer) -> None:
    # what llama-cpp-python answers to a json_schema response_format
    error = {"message": "1 validation error: ('body', 'response_format', 'type'): Input "
             "should be 'text' or 'json_object'", "type": "internal_server_error"}  # fmt: skip
    server.script.append(Answer(500, {"error": error}))
    result = client(server).structured(names_messages(TEXT), Names)
    assert result.mode is Mode.JSON_OBJECT
    assert len(server.requests) == 2


def test_a_server_that_ignores_response_format_is_detected_by_its_prose(
    server: FakeServer,
) -> None:
    def respond(body: dict[str, Any]) -> Answer:
        if body.get("response_format"):
            return chat("The names are Ana and Bruno.")
        return chat('Here: {"names": ["Ana", "Bruno"]}')

    server.default = respond
    result = client(server).structured(names_messages(TEXT), Names)
    assert (result.value.names, result.mode, result.attempts) == (["Ana", "Bruno"], Mode.TEXT, 3)


def test_invalid_output_is_reasked_with_the_reason(server: FakeServer) -> None:
    server.script.extend([chat('{"names": "Ana"}'), chat('{"names": ["Ana"]}')])
    result = client(server).structured(names_messages(TEXT), Names)
    assert (result.value.names, result.attempts) == (["Ana"], 2)
    retry = server.bodies()[1]["messages"]
    assert retry[-2] == {"role": "assistant", "content": '{"names": "Ana"}'}
    assert (
        "invalid: the JSON does not match the schema: names: Input should be a valid list"
        in (retry[-1]["content"])
    )
    assert "JSON schema" in retry[-1]["content"]  # the schema is repeated with the reason
    assert result.usage.requests == 2 and result.usage.total_tokens == 30


def test_output_that_stays_invalid_raises_with_the_reason_and_raw_text(
    server: FakeServer,
) -> None:
    server.default = chat('{"nombres": ["Ana"]}')
    llm = client(server, max_reasks=2)
    with pytest.raises(LLMError) as info:
        llm.structured(names_messages(TEXT), Names)
    error = info.value
    assert "names" in error.reason and "does not match the schema" in error.reason
    assert error.raw == '{"nombres": ["Ana"]}'
    assert error.transient is False
    assert "after 3 attempts" in str(error)
    assert len(server.requests) == 3  # the first answer and two re-asks, then it stopped
    assert llm.usage() == Usage(30, 15, 45, calls=1, requests=3, failures=1)


def test_a_truncated_answer_is_reasked_not_taken_for_an_unsupported_mode(
    server: FakeServer,
) -> None:
    server.script.append(chat('{"names": ["Ana", "Bru', finish="length"))
    result = client(server).structured(names_messages(TEXT), Names, max_tokens=50)
    assert result.mode is Mode.JSON_SCHEMA and result.attempts == 2
    assert "max_tokens" in server.bodies()[1]["messages"][-1]["content"]
    assert all(b["max_tokens"] == 50 for b in server.bodies())


def test_plain_completion(server: FakeServer) -> None:
    server.default = chat("Hello there.", prompt=4, completion=2)
    llm = client(server, temperature=0.0)
    result = llm.complete([{"role": "user", "content": "Hi"}], max_tokens=8)
    assert (result.value, result.text, result.mode) == ("Hello there.", "Hello there.", Mode.TEXT)
    [body] = server.bodies()
    assert "response_format" not in body
    assert (body["max_tokens"], body["temperature"]) == (8, 0.0)
    assert result.usage.total_tokens == 6


# --- transport: retries, timeouts, limits -------------------------------------------------


def test_429_waits_as_long_as_retry_after_says(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script.append(Answer(429, {"error": "slow down"}, {"Retry-After": "1"}))
    llm = client(server)  # its own backoff is 0.01 s: only Retry-After explains a 1 s gap
    with caplog.at_level(logging.INFO, logger="remem"):
        result = llm.complete([{"role": "user", "content": "Hi"}])
    assert result.value
    first, second = server.requests
    assert second["t"] - first["t"] >= 0.9
    assert "HTTP 429" in caplog.text and "retry 1 of 3" in caplog.text


def test_server_errors_are_retried(server: FakeServer, caplog: pytest.LogCaptureFixture) -> None:
    server.script.extend([Answer(500, {"error": "boom"}), Answer(502, {"error": "bad gw"})])
    llm = client(server)
    with caplog.at_level(logging.INFO, logger="remem"):
        result = llm.structured(names_messages(TEXT), Names)
    assert result.value.names and result.attempts == 1
    assert result.usage.requests == 3 and llm.usage().requests == 3
    retries = [r for r in caplog.records if "retry" in r.getMessage()]
    assert [r.levelno for r in retries] == [logging.INFO, logging.INFO]  # never silent


def test_a_timeout_is_retried(server: FakeServer) -> None:
    server.script.append(Answer(body=chat("late").body, delay=3.0))
    server.default = chat("on time")
    result = client(server, timeout=0.3).complete([{"role": "user", "content": "Hi"}])
    assert result.value == "on time"
    assert len(server.requests) == 2


def test_exhausted_retries_raise_within_a_bounded_time(server: FakeServer) -> None:
    server.default = Answer(503, {"error": "overloaded"})
    llm = client(server, max_retries=2)
    start = time.monotonic()
    with pytest.raises(LLMError, match="failed 3 times") as info:
        llm.complete([{"role": "user", "content": "Hi"}])
    assert time.monotonic() - start < 30  # generous: proves it does not hang
    assert info.value.transient is True and "HTTP 503" in info.value.reason
    assert len(server.requests) == 3
    assert llm.usage() == Usage(calls=1, requests=3, failures=1)


def test_a_wait_beyond_the_deadline_gives_up_at_once(server: FakeServer) -> None:
    server.default = Answer(429, {"error": "quota"}, {"Retry-After": "3600"})
    llm = client(server, deadline=20)
    start = time.monotonic()
    with pytest.raises(LLMError, match="deadline"):
        llm.complete([{"role": "user", "content": "Hi"}])
    assert time.monotonic() - start < 15
    assert len(server.requests) == 1


def test_an_unreachable_endpoint_is_retried_then_reported() -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    options = {"max_retries": 1, "backoff": 0.01}
    llm = create_llm(LLMConfig(base_url=f"http://127.0.0.1:{port}/v1", model="m", options=options))
    with pytest.raises(LLMError, match="connection failed") as info:
        llm.complete([{"role": "user", "content": "Hi"}])
    assert info.value.transient is True and "failed 2 times" in str(info.value)


def test_client_errors_are_not_retried(server: FakeServer) -> None:
    server.default = Answer(400, {"error": {"message": "max_tokens must be positive"}})
    with pytest.raises(LLMError, match="HTTP 400") as info:
        client(server).structured(names_messages(TEXT), Names, max_tokens=-1)
    assert info.value.transient is False
    assert len(server.requests) == 1


def test_a_200_that_is_not_a_chat_completion_is_reported(server: FakeServer) -> None:
    server.script.append(Answer(body=b"<html>proxy login</html>"))
    server.script.append(Answer(body={"object": "list", "data": []}))
    llm = client(server)
    with pytest.raises(LLMError, match="without a JSON object"):
        llm.complete([{"role": "user", "content": "Hi"}])
    with pytest.raises(LLMError, match=r"no choices\[0\]"):
        llm.complete([{"role": "user", "content": "Hi"}])


def test_the_concurrency_limit_holds(server: FakeServer) -> None:
    server.default = Answer(body=chat("ok", prompt=3, completion=1).body, delay=0.2)
    llm = client(server, max_concurrency=2)
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda i: llm.complete([{"role": "user", "content": f"{i}"}]),
                                range(6)))  # fmt: skip
    assert [r.value for r in results] == ["ok"] * 6
    assert server.max_active == 2  # never more than the limit, and the limit was used
    assert llm.usage() == Usage(18, 6, 24, calls=6, requests=6)  # counted from 6 threads


def test_usage_adds_up_across_calls_and_missing_usage_counts_zero(server: FakeServer) -> None:
    server.script.extend([chat("a", 10, 5), chat("b", 7, 3)])
    server.script.append(Answer(body={"choices": [{"message": {"content": "c"}}]}))
    llm = client(server)
    for _ in range(3):
        llm.complete([{"role": "user", "content": "Hi"}])
    assert llm.usage() == Usage(17, 8, 25, calls=3, requests=3)


def test_nothing_is_sent_until_a_call(server: FakeServer) -> None:
    client(server).close()
    assert server.requests == []


def test_the_api_key_is_sent_as_bearer_and_never_logged_or_reported(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    def echo(status: int) -> Responder:
        return lambda body: Answer(status, {"error": f"bad key {KEY}"})

    server.script.extend([echo(500), echo(401)])
    config = LLMConfig(base_url=server.url, model="tiny", api_key=KEY)
    llm = create_llm(config)
    with caplog.at_level(logging.DEBUG), pytest.raises(LLMError) as info:
        llm.complete([{"role": "user", "content": "Hi"}])
    assert server.requests[0]["auth"] == f"Bearer {KEY}"
    assert "HTTP 401" in str(info.value) and "api_key" in str(info.value)
    assert "HTTP 500" in caplog.text  # the retry was logged, with the server's text...
    for shown in (str(info.value), info.value.reason, caplog.text, repr(llm), repr(config)):
        assert KEY not in shown  # ...but never the key


# --- configuration ------------------------------------------------------------------------


def test_configuration_errors_say_what_to_fix(server: FakeServer) -> None:
    with pytest.raises(ConfigError, match="base_url"):
        create_llm(LLMConfig(model="m"))
    with pytest.raises(ConfigError, match="model"):
        create_llm(LLMConfig(base_url=server.url))
    with pytest.raises(ConfigError, match="start_mode"):
        client(server, start_mode="xml")
    with pytest.raises(ConfigError, match="bad options for llm 'openai'"):
        client(server, temprature=0.2)
    with pytest.raises(ConfigError, match="unknown llm 'gpt'"):
        create_llm(LLMConfig(name="gpt"))
    assert {"openai", "scripted"} <= set(llm_names())


def test_messages_are_checked_before_sending(server: FakeServer) -> None:
    llm = client(server)
    with pytest.raises(InvalidInputError):
        llm.complete([])
    with pytest.raises(InvalidInputError, match=r"messages\[0\]"):
        llm.complete([{"role": "user"}])  # type: ignore[typeddict-item]
    assert server.requests == []


def test_start_mode_skips_modes_known_not_to_work(server: FakeServer) -> None:
    server.default = chat('{"names": []}')
    result = client(server, start_mode="json_object").structured(names_messages("x"), Names)
    assert result.mode is Mode.JSON_OBJECT and len(server.requests) == 1


# --- pure helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ('```json\n{"a": {"b": [1, 2]}}\n```', {"a": {"b": [1, 2]}}),
        ('Sure: {bad} then {"a": "}"} and {"b": 2}', {"a": "}"}),
        ("[1, 2]", None),
        ("no json here", None),
        ('{"a": 1', None),
    ],
)
def test_extract_json_takes_the_first_object(text: str, expected: object) -> None:
    assert extract_json(text) == expected


def test_parse_explains_each_kind_of_invalid_answer() -> None:
    assert parse(Reply('{"names": ["x"]}'), Names) == Names(names=["x"])
    refused = parse(Reply(None, refusal="I cannot help"), Names)
    assert getattr(refused, "reason", "") == "the model refused: I cannot help"
    prose = parse(Reply("no idea"), Names)
    assert getattr(prose, "no_json", False) is True
    wrong = parse(Reply('{"names": [1]}'), Names)
    assert "names.0" in getattr(wrong, "reason", "")


def test_retry_after_reads_seconds_milliseconds_and_dates() -> None:
    assert retry_after({"retry-after": "2"}) == 2.0
    assert retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # past
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    assert backoff_delay(1, 0.5, 30, rand=lambda: 0.0) == 0.25
    assert backoff_delay(3, 0.5, 30, rand=lambda: 0.999999) == pytest.approx(2.0)
    assert backoff_delay(20, 0.5, 30, rand=lambda: 0.0) == 15.0


def test_strict_mode_only_for_schemas_that_qualify() -> None:
    class Loose(BaseModel):
        name: str
        note: str = ""

    tree, strict = schema_dict(Names)
    assert strict is True and tree["required"] == ["names"]
    assert schema_dict(Loose)[1] is False


def test_prompts_are_versioned_pure_functions() -> None:
    assert NAMES_VERSION == "names/1"
    assert names_messages(TEXT) == names_messages(TEXT)
    assert TEXT in names_messages(TEXT)[-1]["content"]


# --- the scripted fake, through the real registry -------------------------------------------


def scripted(*replies: Any, **options: Any) -> ScriptedLLM:
    llm = create_llm(LLMConfig(name="scripted", options={"replies": replies, **options}))
    assert isinstance(llm, ScriptedLLM)
    return llm


def test_the_scripted_fake_replays_good_invalid_and_failing_answers() -> None:
    llm = scripted(
        Names(names=["Ana"]),
        "not json at all",
        {"names": "Ana"},
        '{"names": ["Bruno"]}',
        LLMError("endpoint down", transient=True),
    )
    assert llm.structured(names_messages(TEXT), Names).value.names == ["Ana"]
    second = llm.structured(names_messages(TEXT), Names)
    # prose in json_schema mode moves to json_object; a wrong object there is re-asked
    assert (second.value.names, second.mode, second.attempts) == (["Bruno"], Mode.JSON_OBJECT, 3)
    assert llm.mode is Mode.JSON_OBJECT
    with pytest.raises(LLMError, match="endpoint down"):
        llm.structured(names_messages(TEXT), Names)
    with pytest.raises(RuntimeError, match="ran out of replies"):
        llm.complete([{"role": "user", "content": "Hi"}])
    assert llm.usage().calls == 4 and llm.usage().failures == 2


def test_the_scripted_fake_can_reject_modes_and_answer_from_the_request() -> None:
    def echo_mode(request: ScriptedRequest) -> str:
        return json.dumps({"names": [request.mode.value]})

    llm = scripted(echo_mode, reject_modes=["json_schema"], max_reasks=0)
    result = llm.structured(names_messages(TEXT), Names)
    assert (result.value.names, result.usage.requests) == (["json_object"], 2)
    assert [r.mode for r in llm.requests] == [Mode.JSON_SCHEMA, Mode.JSON_OBJECT]
    llm.add('{"names": 3}')
    with pytest.raises(LLMError, match="stayed invalid after 1 attempts"):
        llm.structured(names_messages(TEXT), Names)
    assert llm.remaining == 0
