"""The REST server's reliability benches at CI size, against real ``remem serve`` processes.

Each bench must report zero where zero is the promise: no acknowledged write lost, nothing
torn or doubled, no 5xx, no leak across tenants, no failed request under load. Timings
are printed by the benches, never asserted here. The checkers the benches rely on are
tested on planted faults, so a zero means something.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from remem.bench.serving import run_crash, run_hostile, run_load, run_writers
from remem.bench.serving.crash import CrashReport
from remem.bench.serving.hostile import judge, parse
from remem.bench.serving.integrity import Dump, Ledger, check
from remem.bench.serving.probes import Expect, Fixture, Probe, all_probes
from remem.bench.serving.process import Reply
from remem.cli import bench_serving
from remem.cli.common import State

COMMANDS = (bench_serving.serve_crash, bench_serving.serve_writers,
            bench_serving.serve_hostile, bench_serving.serve_load)  # fmt: skip


def _children() -> set[int]:
    """Live child processes of this test process (Linux /proc)."""
    me, found = os.getpid(), set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rpartition(")")[2].split()
            if fields and int(fields[1]) == me and fields[0] != "Z":
                found.add(int(entry.name))
    return found


@pytest.fixture(autouse=True)
def no_orphans() -> Iterator[None]:
    """Every server a bench starts is gone when it returns."""
    if not Path("/proc/self/stat").exists():
        yield
        return
    before = _children()
    yield
    assert _children() - before == set()


# ------------------------------------------------------------------------ the benches


def test_crash_loses_no_acknowledged_write() -> None:
    report = run_crash(trials=3, clients=2, max_delay=1.0, progress=False)
    assert report.trials == 3 and report.acknowledged > 0, report.table()
    assert report.resent == report.in_flight >= report.in_flight_stored
    assert (report.lost, report.torn, report.duplicated, report.unexpected) == (0, 0, 0, 0)
    assert report.failed == 0 and report.integrity == "ok", report.table()
    assert report.ok


def test_servers_and_cli_writers_on_one_file_lose_and_double_nothing() -> None:
    report = run_writers(servers=2, cli_writers=1, clients=2, adds=6, cli_adds=2, cli_batch=3,
                         progress=False)  # fmt: skip
    assert report.acknowledged > 0 and report.resends > 0, report.table()
    assert report.failed == 0, report.table()
    assert (report.lost, report.duplicated, report.torn, report.unexpected) == (0, 0, 0, 0)
    assert report.resends_stored_again == 0 and report.integrity == "ok"
    assert report.internal_errors == 0 and report.ok


def test_hostile_requests_are_refused_and_leak_nothing() -> None:
    report = run_hostile(fuzz_examples=10, progress=False)
    table = report.table()
    assert report.requests >= 60 and report.answered_4xx >= 60, table
    assert report.server_errors == 0 and report.no_answer == 0, table
    assert report.unexpected_2xx == 0 and report.unlike_unknown == 0, table
    assert report.leaks == 0 and report.failed_checks == 0, table
    assert report.store_changed == () and report.internal_errors == 0, table
    assert report.fuzz is not None and report.fuzz.requests > 0, table
    assert report.fuzz.server_errors == 0 and report.fuzz.schema_violations == 0, table
    assert report.fuzz.errors == 0 and report.ok


def test_load_stops_by_itself_with_no_failed_request() -> None:
    report = run_load(duration=3, clients=2, progress=False)
    assert report.add.requests > 0 and report.search.requests > 0, report.table()
    assert report.errors == 0 and report.lost == 0 and report.ok, report.table()
    assert report.requests == report.add.requests + report.search.requests


# ---------------------------------------------------------------- the checkers work


def _row(row_type: str, **fields: Any) -> dict[str, Any]:
    return {"type": row_type, **fields}


def test_check_finds_lost_torn_duplicated_and_unexpected_records() -> None:
    ledger = Ledger()
    for add, ids in {"ok": ["m1"], "lost": ["m2"], "half": ["m3", "m4"], "gone": ["m5"]}.items():
        ledger.send(add, ids)
    for add in ("ok", "lost", "half"):
        ledger.ack(add)
    dump = Dump(
        messages=[_row("message", id=i) for i in ("m1", "m1", "m3", "x9", "m6")],
        memories=[_row("memory", kind="turn", source_ids=[i]) for i in ("m1", "m3", "m3", "m7")]
        + [_row("memory", kind="summary", source_ids=["m1", "m3"])],
    )
    found = check(dump, ledger)
    assert (found.lost, found.duplicated, found.unexpected) == (2, 2, 2)
    # m7 cited but not stored, x9 and m6 stored but not cited, the "half" add part-stored
    assert found.torn == 4 and found.examples["torn"] == ("m6", "m7", "x9", "half")
    assert found.examples["lost"] == ("m2", "m4")


def _fixture() -> Fixture:
    return Fixture(a_memory="a" * 32, a_export=b"", b_memories=("b" * 32, "d" * 32),
                   b_messages=("bm",), b_key_id="k", b_user="user-b", b_export=b"",
                   b_markers=("SECRET", "b" * 32), server_paths=("/srv/x",))  # fmt: skip


def _reply(status: int, body: Any) -> Reply:
    return Reply(status, {}, json.dumps(body).encode())


def _no_fetch(method: str, target: str) -> Reply:
    raise AssertionError("no check should fetch here")


def test_judge_flags_5xx_unexpected_2xx_leaks_and_unlike_unknown_answers() -> None:
    fx, refuse = _fixture(), Probe("p", "GET", "/v1/stats")
    assert judge(refuse, _reply(400, {}), None, fx, _no_fetch) is None
    assert judge(refuse, _reply(500, {}), None, fx, _no_fetch)[0] == "5xx"  # type: ignore[index]
    assert judge(refuse, _reply(200, {}), None, fx, _no_fetch)[0] == "unexpected 2xx"  # type: ignore[index]
    assert judge(refuse, Reply(0, {}, b""), None, fx, _no_fetch)[0] == "no answer"  # type: ignore[index]
    leak = judge(refuse, _reply(404, {"m": "SECRET"}), None, fx, _no_fetch)
    assert leak is not None and leak[0] == "leak"
    path = judge(refuse, _reply(503, {"m": "/srv/x/db"}), None, fx, _no_fetch)
    assert path is not None and path[0] == "5xx"
    foreign = Probe("f", "GET", f"/v1/memories/{'b' * 32}", expect=Expect.UNKNOWN, foreign="b" * 32)

    def error(message: str) -> Reply:
        return _reply(404, {"error": {"code": "not_found", "message": message}})

    same = (error(f"no memory {'c' * 32!r} here"), "c" * 32)
    assert judge(foreign, error(f"no memory {'b' * 32!r} here"), same, fx, _no_fetch) is None
    other = judge(foreign, error(f"memory {'b' * 32!r} is another tenant's"), same, fx, _no_fetch)
    assert other is not None and other[0] == "unlike unknown"
    harmless = Probe("h", "GET", "/v1/memories", expect=Expect.HARMLESS)
    assert judge(harmless, _reply(200, {"items": []}), None, fx, _no_fetch) is None


def test_raw_responses_are_parsed_with_and_without_chunking() -> None:
    plain = parse(b"HTTP/1.1 413 Too Large\r\ncontent-length: 2\r\n\r\n{}")
    assert (plain.status, plain.body) == (413, b"{}")
    chunked = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")  # fmt: skip
    assert (chunked.status, chunked.body) == (200, b"abcde")
    assert parse(b"").status == 0


def test_the_hostile_set_is_large_and_covers_every_kind() -> None:
    probes = all_probes(_fixture())
    assert len(probes) >= 60 and len({p.name for p in probes}) == len(probes)
    assert {p.expect for p in probes} == set(Expect)
    assert {p.method for p in probes} >= {"GET", "POST", "PATCH", "DELETE", "PUT", "TRACE"}
    assert any(p.chunked for p in probes) and any(len(p.body or b"") > 1 << 20 for p in probes)


# ------------------------------------------------------------------------------- CLI


def _invoke(*args: str) -> Any:
    command = {c.name: c for c in COMMANDS}[args[0]]
    return CliRunner().invoke(command, list(args[1:]), obj=State(None, None, False))


@pytest.mark.parametrize("name", [c.name for c in COMMANDS])
def test_commands_document_themselves(name: str) -> None:
    result = _invoke(str(name), "--help")
    assert result.exit_code == 0 and "Example" in result.output and "--json" in result.output


def test_serve_load_prints_json_and_writes_out(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    result = _invoke("serve-load", "--duration", "1", "--clients", "1", "--json",
                     "--no-progress", "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["ok"] is True and printed["report"]["errors"] == 0
    assert json.loads(out.read_text(encoding="utf-8")) == printed


def test_a_violated_zero_figure_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    lost = CrashReport(trials=1, adds=2, acknowledged=2, in_flight=0, in_flight_stored=0,
                       resent=0, lost=1, torn=0, duplicated=0, unexpected=0, failed=0,
                       integrity="ok", seconds=1.0)  # fmt: skip
    monkeypatch.setattr(bench_serving, "run_crash", lambda *a, **k: lost)
    result = _invoke("serve-crash", "--trials", "1", "--no-progress")
    assert result.exit_code == 1
    lines = [line.split() for line in result.stdout.splitlines()]
    assert ["acknowledged", "messages", "lost", "1"] in lines
    assert "error:" in result.stderr
