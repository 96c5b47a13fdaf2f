"""A schemathesis run against a live server's OpenAPI document.

schemathesis's own engine (what ``st run`` runs) goes through every operation in
``/openapi.json`` twice: the coverage phase sends boundary and invalid values of each
parameter, the fuzzing phase ``examples`` generated requests per operation that match
the schema and that break it; all with an admin key. Every answer is checked for a 5xx
(``not_a_server_error``) and, where the schema documents the answer, for its body and
content type. Failures are collected with the request that caused them (a curl
command) and the run goes on. schemathesis is a development dependency.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from remem.bench.serving.table import format_rows
from remem.errors import ConfigError

SERVER_ERROR = "not_a_server_error"
CHECKS = (SERVER_ERROR, "response_schema_conformance", "content_type_conformance")
EXAMPLES = 3  # failures kept per (operation, check)


@dataclass(frozen=True)
class FuzzFailure:
    """One failed check: the operation, the check, the status and the request."""

    operation: str
    check: str
    status: int | None
    request: str
    detail: str


@dataclass(frozen=True)
class FuzzReport:
    """What the schemathesis run found; ``errors`` counts what kept schemathesis from
    testing (a request that could not be sent, a schema it could not read)."""

    operations: int
    requests: int
    server_errors: int
    schema_violations: int
    errors: int
    failures: tuple[FuzzFailure, ...]
    error_examples: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """No 5xx, every documented answer conforms, no request failed to go out."""
        return not (self.server_errors or self.schema_violations or self.errors)

    def table(self) -> str:
        """The figures as a small table, then one line per failure (with its request)."""
        rows = [("schemathesis operations", self.operations),
                ("generated requests", self.requests), ("answered 5xx", self.server_errors),
                ("answers off the schema", self.schema_violations),
                ("errors that stopped testing", self.errors)]  # fmt: skip
        lines = [format_rows(rows)]
        for f in self.failures:
            lines += [f"  FAIL {f.operation} {f.check} -> {f.status}: {f.detail[:160]}",
                      f"       {f.request[:400]}"]  # fmt: skip
        lines += [f"  ERROR {e[:300]}" for e in self.error_examples]
        return "\n".join(lines)


class Collector:
    """Requests sent, failures counted per (operation, check) with a few distinct
    requests kept each."""

    def __init__(self) -> None:
        self.requests = 0
        self.errors: list[str] = []
        self.counts: Counter[tuple[str, str]] = Counter()
        self.kept: list[FuzzFailure] = []

    def add(self, failure: FuzzFailure) -> None:
        """Count a failure; keep it if it is among the first few of its kind."""
        key = (failure.operation, failure.check)
        self.counts[key] += 1
        same = [f for f in self.kept if (f.operation, f.check) == key]
        if len(same) < EXAMPLES and failure.request not in {f.request for f in same}:
            self.kept.append(failure)

    def total(self, wanted: Callable[[str], bool]) -> int:
        """Failures whose check name passes ``wanted``."""
        return sum(n for (_, check), n in self.counts.items() if wanted(check))

    def scenario(self, recorder: Any, headers: dict[str, str], url: str) -> None:
        """Count one finished scenario's requests and record its failed checks."""
        self.requests += len(recorder.interactions)
        for case_id, nodes in recorder.checks.items():
            for node in nodes:
                if node.failure_info is None:
                    continue
                failure = node.failure_info.failure
                interaction = recorder.interactions.get(case_id)
                response = interaction.response if interaction is not None else None
                status = response.status_code if response is not None else None
                curl = recorder.cases[case_id].value.as_curl_command(headers, base_url=url)
                self.add(FuzzFailure(recorder.label, node.name, status, curl,
                                     f"{failure.title}: {failure.message}"))  # fmt: skip


def _config(schemathesis: Any, headers: dict[str, str], examples: int, seed: int) -> Any:
    """A run of the coverage phase (boundary and invalid values of every parameter) and
    the fuzzing phase (``examples`` generated requests per operation and mode)."""
    checks = {"enabled": False, **{name: {"enabled": True} for name in CHECKS}}
    return schemathesis.Config.from_dict({
        "headers": headers, "seed": seed, "workers": 1, "continue-on-failure": True,
        "checks": checks, "request-timeout": 60,
        "phases": {"examples": {"enabled": False}, "stateful": {"enabled": False},
                   "coverage": {"enabled": True}, "fuzzing": {"enabled": True}},
        "generation": {"max-examples": examples, "mode": "all", "database": "none"},
    })  # fmt: skip


def run_fuzz(
    url: str, key: str, examples: int = 25, seed: int = 0, progress: bool = True
) -> FuzzReport:
    """Fuzz every operation of the server at ``url`` with an admin ``key``."""
    schemathesis = load_schemathesis()
    from schemathesis.engine import events, from_schema

    headers = {"Authorization": f"Bearer {key}"}
    config = _config(schemathesis, headers, examples, seed)
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=config)
    operations = sum(1 for _ in schema.get_all_operations())
    found = Collector()
    with tqdm(desc="schemathesis", unit="req", disable=not progress) as bar:
        for event in from_schema(schema).execute():
            if isinstance(event, events.ScenarioFinished):
                found.scenario(event.recorder, headers, url)
                bar.update(found.requests - bar.n)
            elif isinstance(event, events.NonFatalError):
                found.errors.append(f"{event.label}: {event.value}")
            elif isinstance(event, events.FatalError):
                found.errors.append(str(event.exception))
    return FuzzReport(
        operations=operations, requests=found.requests,
        server_errors=found.total(lambda check: check == SERVER_ERROR),
        schema_violations=found.total(lambda check: check != SERVER_ERROR),
        errors=len(found.errors), failures=tuple(found.kept),
        error_examples=tuple(found.errors[:EXAMPLES]),
    )  # fmt: skip


def load_schemathesis() -> Any:
    """The schemathesis module, or a ``ConfigError`` saying how to install it."""
    try:
        import schemathesis
    except ImportError:
        raise ConfigError(
            "the schemathesis run needs schemathesis: pip install schemathesis "
            "(it is in remem's dev extra); pass --fuzz-examples 0 to skip it"
        ) from None
    return schemathesis
