"""The web inspector at /ui, over real HTTP: one real server on a real SQLite file with the
real default embedder, its pages checked with httpx and end to end in headless Chromium
(Debian's ``chromium`` driven by Playwright; those tests skip when either is missing)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from remem import Memory
from remem.embedders.base import Embedder
from remem.keys import KeyRing
from remem.server import ui
from remem.server.app import ServerConfig, create_app
from remem.server.run import running

CHROMIUM = "/usr/bin/chromium"
XSS = "<script>alert(1)</script>"
XSS_SESSION = '"><b>s</b>'  # a scope id is any one line of text: it must be escaped too
XSS_SPEAKER = "<i>Eve</i>"
TRIP = [  # one session over two days, in conversation order
    ("user", "Ana", "We are planning a trip to Lisbon in June.", "2024-05-02T09:30:00"),
    ("assistant", None, "Lovely! Do you want ideas for where to stay?", "2024-05-02T09:31:00"),
    ("user", "Ana", "Yes, somewhere near the tram 28 line.", "2024-05-02T09:33:00"),
    ("user", "Ana", "Booked the flat in Alfama for June 10 to 17.", "2024-05-03T18:05:00"),
    ("assistant", None, "Great choice; Alfama is close to the castle.", "2024-05-03T18:06:00"),
]


def with_inspector(memory: Memory, config: ServerConfig | None = None) -> FastAPI:
    """The REST app with the inspector, included once (``create_app`` may include it)."""
    app = create_app(memory, config)
    if not any(getattr(r, "path", "").startswith("/ui") for r in app.routes):
        app.include_router(ui.router)
    return app


@dataclass
class Site:
    """A running server, the keys of two tenants, and the seeded memories by name."""

    url: str
    memory: Memory
    key_a: str
    key_b: str
    ids: dict[str, str]
    shots: Path


def _seed(memory: Memory) -> dict[str, str]:
    """Memories of two users in tenant acme, one of globex, one in the open tenant."""
    acme, globex = memory.tenant("acme"), memory.tenant("globex")
    trip = [{"role": r, "content": c, "timestamp": t, **({"speaker": s} if s else {})}
            for r, s, c, t in TRIP]  # fmt: skip
    ids = {"trip": acme.add(trip, user_id="ana", session_id="trip").memories[0].id}
    for name, text in [("rex", "I adopted a beagle named Rex last spring."),
                       ("pin", "My passport expires in March 2026."),
                       ("pin_http", "My favourite pastry is the pastel de nata."),
                       ("forget", "My old phone number was 555 0100."),
                       ("forget_http", "I used to live in Porto.")]:  # fmt: skip
        ids[name] = acme.add(text, user_id="ana", session_id="pets",
                             timestamp="2024-04-20T12:00:00").memories[0].id  # fmt: skip
    ids["bob"] = acme.add("Bob's standup moved to 10 am.", user_id="bob",
                          session_id="work").memories[0].id  # fmt: skip
    message = {"content": XSS, "speaker": XSS_SPEAKER, "timestamp": "2024-03-01T08:00:00"}
    ids["xss"] = acme.add([message], user_id="ana", session_id=XSS_SESSION).memories[0].id
    ids["globex"] = globex.add("Globex launch code is 4242.", user_id="gina",
                               session_id="vault").memories[0].id  # fmt: skip
    note = memory.add("An open-server note about gardening.", user_id="olga")
    ids["open"] = note.memories[0].id
    return ids


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Site]:
    memory = Memory(tmp_path_factory.mktemp("ui") / "served.db", embedder=embedder)
    ring = KeyRing(memory.store)
    _, key_a = ring.create("acme", "ana's laptop")
    _, key_b = ring.create("globex")
    ids = _seed(memory)
    shots = tmp_path_factory.mktemp("screenshots")
    with running(with_inspector(memory)) as url:
        yield Site(url, memory, key_a, key_b, ids, shots)
    memory.close()


def _client(site: Site, key: str | None = None, **headers: str) -> httpx.Client:
    cookies = {ui.COOKIE: key} if key else None
    return httpx.Client(base_url=site.url, cookies=cookies, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def acme(site: Site) -> Iterator[httpx.Client]:
    with _client(site, site.key_a) as client:
        yield client


def _post(client: httpx.Client, site: Site, path: str, **headers: str) -> httpx.Response:
    return client.post(path, headers={"Origin": site.url, **headers})


def _page(answer: httpx.Response, status: int = 200) -> str:
    assert answer.status_code == status, answer.text[:2000]
    assert answer.headers["content-type"].startswith("text/html")
    assert "Traceback" not in answer.text
    return answer.text


# ------------------------------------------------------------------------- over httpx


def test_pages_need_a_key_a_wrong_key_is_refused_a_right_one_signs_in(site: Site) -> None:
    with _client(site) as anonymous:
        first = anonymous.get("/ui/memories")
        assert first.status_code == 303 and first.headers["location"] == "/ui/signin"
        form = {"Origin": site.url, "Content-Type": "application/x-www-form-urlencoded"}
        wrong = anonymous.post("/ui/signin", content="key=rk_wrong", headers=form)
        assert "unknown or revoked" in _page(wrong, 401) and "set-cookie" not in wrong.headers
        right = anonymous.post("/ui/signin", data={"key": site.key_a}, headers=form)
        assert right.status_code == 303
        assert right.headers["location"] == "/ui/memories?done=signed-in"
        cookie = right.headers["set-cookie"].lower()
        for flag in ("httponly", "samesite=strict", "path=/ui"):
            assert flag in cookie
        page = _page(anonymous.get("/ui/memories?done=signed-in"))
        assert "tenant <strong>acme</strong>" in page and "Signed in." in page
        gone = _post(anonymous, site, "/ui/signout")
        assert gone.status_code == 303 and ui.COOKIE not in anonymous.cookies
        assert anonymous.get("/ui/memories").status_code == 303


def test_browse_shows_the_tenants_scopes_kinds_and_pages(
    site: Site, acme: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    everything = _page(acme.get("/ui/memories"))
    assert '<option value="ana">' in everything and '<option value="bob">' in everything
    assert "gina" not in everything and "Globex" not in everything  # another tenant's
    assert "open-server note" not in everything
    ana = _page(acme.get("/ui/memories", params={"user_id": "ana"}))
    assert "beagle named Rex" in ana and "standup" not in ana
    assert "/ui/timeline?user_id=ana&amp;session_id=trip" in ana  # its sessions, to open
    facts = _page(acme.get("/ui/memories", params={"user_id": "ana", "kind": "fact"}))
    assert "No memories here" in facts
    monkeypatch.setattr(ui, "PAGE_SIZE", 2)
    first = _page(acme.get("/ui/memories", params={"user_id": "ana", "session_id": "pets"}))
    assert len(re.findall(r'<tr>\s*<td class="nowrap">', first)) == 2
    assert "offset=2" in first and "Newer" not in first
    second = _page(acme.get("/ui/memories", params={"user_id": "ana", "session_id": "pets",
                                                     "offset": 2}))  # fmt: skip
    assert "Newer" in second and "offset=4" in second


def test_a_session_timeline_is_in_conversation_order_with_days_and_speakers(
    acme: httpx.Client,
) -> None:
    whole = _page(acme.get("/ui/timeline", params={"user_id": "ana", "session_id": "trip"}))
    page = whole[whole.index('<ol class="timeline">') :]  # after the session's summary
    said = [page.index(text.replace("'", "&#39;")) for _, _, text, _ in TRIP]
    assert said == sorted(said)
    assert "Thursday 02 May 2024" in page and "Friday 03 May 2024" in page
    assert page.index("Thursday 02 May") < said[0] < said[2] < page.index("Friday 03 May")
    assert '<span class="speaker">Ana</span>' in page
    assert '<span class="speaker">assistant</span>' in page
    assert "09:31" in page and "Ana: We are" not in page  # the speaker is not repeated


def test_search_shows_hits_channels_step_scores_analysis_and_timings(
    site: Site, acme: httpx.Client
) -> None:
    page = _page(acme.get("/ui/search", params={"q": "Where is the Lisbon flat?",
                                                "user_id": "ana"}))  # fmt: skip
    assert "#1" in page and "Alfama" in page
    first_hit = page[page.index('<article class="hit card">') :]
    first_hit = first_hit[: first_hit.index("</article>")]
    assert '<span class="tag channel">bm25</span>' in first_hit
    assert re.search(r"<td>bm25 <span class=\"muted\">channel</span></td><td class=\"num\">"
                     r"\d+\.\d{4}</td>", first_hit)  # fmt: skip
    assert re.search(r'<tr class="step"><td>session</td>', first_hit)
    assert "Query analysis" in page and "lisbon" in page and "<td>total</td>" in page
    assert "Globex" not in page
    bm25 = _page(acme.get("/ui/search", params={"q": "Lisbon", "recipe": "bm25"}))
    assert "recipe <code>bm25</code>" in bm25 and "<td>dense" not in bm25
    unknown = _page(acme.get("/ui/search", params={"q": "Lisbon", "recipe": "nope"}), 400)
    assert "unknown recipe" in unknown


def test_a_memory_page_shows_fields_decay_history_and_pin_records_an_update(
    site: Site, acme: httpx.Client
) -> None:
    memory_id = site.ids["pin_http"]
    page = _page(acme.get(f"/ui/memories/{memory_id}"))
    shown = ("strength", "access_count", "last_accessed_at", "importance", "expires_at",
             "superseded_by", "valid_to", "source_ids", "pastel de nata", ">ADD<")  # fmt: skip
    for field in shown:
        assert field in page
    pinned = _post(acme, site, f"/ui/memories/{memory_id}/pin")
    assert pinned.status_code == 303
    assert pinned.headers["location"] == f"/ui/memories/{memory_id}?done=pinned"
    after = _page(acme.get(pinned.headers["location"]))
    assert "Pinned. The change" in after and ">UPDATE<" in after
    assert "pinned in the inspector" in after and "Unpin" in after
    assert site.memory.tenant("acme").get(memory_id).pinned
    unpinned = _post(acme, site, f"/ui/memories/{memory_id}/unpin")
    assert unpinned.headers["location"].endswith("done=unpinned")
    assert not site.memory.tenant("acme").get(memory_id).pinned


def test_forget_deletes_and_the_forgotten_page_keeps_its_history(
    site: Site, acme: httpx.Client
) -> None:
    memory_id = site.ids["forget_http"]
    gone = _post(acme, site, f"/ui/memories/{memory_id}/forget")
    assert gone.status_code == 303
    assert gone.headers["location"] == "/ui/memories?user_id=ana&session_id=pets&done=forgotten"
    listing = _page(acme.get(gone.headers["location"]))
    assert "Forgotten: the memory is deleted" in listing and "Porto" not in listing
    page = _page(acme.get(f"/ui/memories/{memory_id}"))
    assert "was forgotten" in page and ">DELETE<" in page and "Porto" not in page  # erased
    again = _post(acme, site, f"/ui/memories/{memory_id}/forget")
    assert "no memory" in _page(again, 404)


CROSS_SITE = [{"Origin": "http://evil.example"}, {"Origin": "null"}, {},
              {"Referer": "http://evil.example/ui/memories"}]  # fmt: skip


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_a_cross_site_or_unlabelled_post_is_refused(
    site: Site, acme: httpx.Client, headers: dict[str, str]
) -> None:
    memory_id = site.ids["rex"]
    for action in ("pin", "forget"):
        answer = acme.post(f"/ui/memories/{memory_id}/{action}", headers=headers)
        assert "posted from another site" in _page(answer, 403)
    assert not site.memory.tenant("acme").get(memory_id).pinned
    refused = acme.post("/ui/signout", headers=headers)
    assert refused.status_code == 403


def test_a_same_origin_referer_stands_in_for_a_missing_origin(
    site: Site, acme: httpx.Client
) -> None:
    memory_id = site.ids["rex"]
    answer = acme.post(f"/ui/memories/{memory_id}/unpin", headers={
        "Referer": f"{site.url}/ui/memories/{memory_id}"})  # fmt: skip
    assert answer.status_code == 303


def test_another_tenants_memory_answers_like_an_unknown_one(site: Site, acme: httpx.Client) -> None:
    theirs, unknown = site.ids["globex"], "0" * 32
    mine = _page(acme.get(f"/ui/memories/{theirs}"), 404)
    nobody = _page(acme.get(f"/ui/memories/{unknown}"), 404)
    assert mine.replace(theirs, unknown) == nobody and "Globex" not in mine
    for action in ("pin", "forget"):
        _page(_post(acme, site, f"/ui/memories/{theirs}/{action}"), 404)
    kept = site.memory.tenant("globex").get(theirs)
    assert not kept.pinned
    with _client(site, site.key_b) as globex:
        assert "Globex launch code" in _page(globex.get(f"/ui/memories/{theirs}"))
        assert "beagle" not in _page(globex.get("/ui/memories"))
        found = _page(globex.get("/ui/search", params={"q": "beagle Rex launch"}))
        assert "Globex launch code" in found and "adopted a beagle" not in found


def test_user_given_text_is_escaped_on_every_page(site: Site, acme: httpx.Client) -> None:
    scope = {"user_id": "ana", "session_id": XSS_SESSION}
    pages = [
        acme.get("/ui/memories", params={"user_id": "ana"}),
        acme.get(f"/ui/memories/{site.ids['xss']}"),
        acme.get("/ui/timeline", params=scope),
        acme.get("/ui/search", params={"q": "alert script", **scope}),
        acme.get("/ui/search", params={"q": XSS, "session_id": XSS}),
    ]
    for answer in pages:
        page = _page(answer)
        assert "<script" not in page and "<b>s</b>" not in page and "<i>Eve" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&#34;&gt;&lt;b&gt;s&lt;/b&gt;" in _page(pages[2])  # the session id, as text
    assert "&lt;i&gt;Eve&lt;/i&gt;" in _page(pages[2])


def test_errors_are_pages_with_the_message_and_status(acme: httpx.Client) -> None:
    assert "offset must be" in _page(acme.get("/ui/memories?offset=-1"), 400)
    assert "invalid parameters" in _page(acme.get("/ui/memories?offset=many"), 400)
    assert "session_id" in _page(acme.get("/ui/timeline"), 400)
    assert "no page /ui/nowhere" in _page(acme.get("/ui/nowhere"), 404)
    assert "limit must be" in _page(acme.get("/ui/search?q=x&limit=0"), 400)
    assert "tenant <strong>acme</strong>" in _page(acme.get("/ui/nowhere"), 404)


def test_an_unexpected_failure_is_an_internal_error_page_without_details(
    acme: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(ui, "scopes_of", broken)
    page = _page(acme.get("/ui/memories"), 500)
    assert "internal error" in page and "secret internals" not in page


def test_pages_carry_security_headers_and_the_stylesheet_is_served(acme: httpx.Client) -> None:
    page = acme.get("/ui/memories")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    css = acme.get("/ui/static/inspector.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert ".timeline" in css.text
    assert acme.get("/ui").headers["location"] == "/ui/memories"


def test_a_revoked_key_sends_the_browser_back_to_sign_in(site: Site) -> None:
    ring = KeyRing(site.memory.store)
    key, secret = ring.create("acme", "soon revoked")
    with _client(site, secret) as client:
        assert client.get("/ui/memories").status_code == 200
        ring.revoke(key.id)
        answer = client.get("/ui/memories")
        assert answer.headers["location"] == "/ui/signin?expired=1"
        assert f'{ui.COOKIE}=""' in answer.headers["set-cookie"]
        assert "no longer valid" in _page(client.get("/ui/signin?expired=1"))


def test_an_open_server_needs_no_sign_in_shows_a_banner_and_answers_only_loopback(
    site: Site,
) -> None:
    with running(with_inspector(site.memory, ServerConfig(open=True))) as url:
        with httpx.Client(base_url=url, timeout=60) as client:
            page = _page(client.get("/ui/memories"))
            assert "This server is <strong>open</strong>" in page
            assert "gardening" in page and "beagle" not in page  # tenant "default"
            assert "No sign-in is needed" in _page(client.get("/ui/signin"))
            memory_id = site.ids["open"]
            refused = client.post(f"/ui/memories/{memory_id}/pin")  # no Origin: CSRF
            assert "posted from another site" in _page(refused, 403)
            rebound = client.get("/ui/memories", headers={"Host": "evil.example"})
            assert "loopback" in _page(rebound, 403)
        with httpx.Client(base_url=url, cookies={ui.COOKIE: site.key_a}) as signed_in:
            with_key = signed_in.get("/ui/memories")
            assert "beagle" in _page(with_key)  # a key still opens its own tenant


# ------------------------------------------------------------------ in a real browser


def _playwright() -> Any:
    """Playwright's sync API, or a skip naming what is missing."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"no {CHROMIUM}: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install playwright")
    return sync_playwright


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Any]:
    """One headless Chromium for the module."""
    with _playwright()() as driver:
        chromium = driver.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookie) and page, 1200x800."""
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    tab = context.new_page()
    yield tab
    context.close()


def _sign_in(page: Any, site: Site, key: str) -> None:
    page.goto(f"{site.url}/ui/memories")
    page.fill("input[name=key]", key)
    page.click("button[type=submit]")


def _shot(page: Any, site: Site, name: str) -> None:
    page.screenshot(path=str(site.shots / f"inspector-{name}.png"))


def test_browser_sign_in_browse_timeline_and_sign_out(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/ui/memories")
    assert page.url == f"{site.url}/ui/signin"
    _shot(page, site, "signin")
    _sign_in(page, site, "rk_not-a-key")
    assert "unknown or revoked" in page.inner_text(".banner.error")
    _sign_in(page, site, site.key_a)
    assert page.url.endswith("/ui/memories?done=signed-in")
    assert page.inner_text(".banner.notice") == "Signed in."
    page.select_option("select[name=user_id]", "ana")
    page.click("form.filters button")
    assert "user_id=ana" in page.url and "standup" not in page.inner_text("table.memories")
    _shot(page, site, "memories")
    page.click("aside.sessions a:text-is('trip')")
    assert page.inner_text("h1") == "Session trip"
    said = page.locator(".turn .said").all_inner_texts()
    assert said == [text for _, _, text, _ in TRIP]
    assert page.locator(".timeline .day").all_inner_texts() == [
        "Thursday 02 May 2024", "Friday 03 May 2024"]  # fmt: skip
    _shot(page, site, "timeline")
    page.click("button:text('Sign out')")
    assert page.url == f"{site.url}/ui/signin"
    page.goto(f"{site.url}/ui/memories")
    assert page.url == f"{site.url}/ui/signin"


def test_browser_search_with_explain_shows_channel_scores(page: Any, site: Site) -> None:
    _sign_in(page, site, site.key_a)
    page.click("nav a:text('Search')")
    page.fill("input[name=q]", "When did Ana book the flat in Lisbon?")
    page.select_option("select[name=user_id]", "ana")
    page.select_option("select[name=recipe]", "default")
    page.click("form.filters button")
    first = page.locator("article.hit").first
    assert first.locator(".rank").inner_text() == "#1"
    assert "Alfama" in first.inner_text()
    channels = first.locator(".tag.channel").all_inner_texts()
    assert set(channels) <= {"bm25", "dense", "time"} and channels
    rows = first.locator("table.scores tbody tr").all_inner_texts()
    assert any(r.startswith("bm25 channel") or r.startswith("dense channel") for r in rows)
    assert "total" in page.inner_text("table.timings")
    assert "terms" in page.inner_text("aside.explain")
    _shot(page, site, "search")


def test_browser_pin_then_history_then_forget(page: Any, site: Site) -> None:
    _sign_in(page, site, site.key_a)
    page.goto(f"{site.url}/ui/memories/{site.ids['pin']}")
    assert page.locator(".history .action").all_inner_texts() == ["ADD"]
    page.click("button:text-is('Pin')")
    assert page.inner_text(".banner.notice").startswith("Pinned")
    assert page.locator(".history .action").all_inner_texts() == ["ADD", "UPDATE"]
    assert "pinned" in page.inner_text(".history .changes")
    _shot(page, site, "memory")
    page.goto(f"{site.url}/ui/memories/{site.ids['forget']}")
    page.click("summary:text('Forget')")
    page.click("button:text('Forget this memory')")
    assert page.inner_text(".banner.notice").startswith("Forgotten")
    assert "555 0100" not in page.inner_text("main")
    assert "passport" in page.inner_text("main")


def test_browser_shows_markup_as_text_and_confines_to_the_tenant(page: Any, site: Site) -> None:
    dialogs: list[str] = []

    def seen(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", seen)
    _sign_in(page, site, site.key_a)
    page.goto(f"{site.url}/ui/memories/{site.ids['xss']}")
    assert page.inner_text("blockquote.text") == f"{XSS_SPEAKER}: {XSS}"
    page.goto(f"{site.url}/ui/timeline?user_id=ana&session_id=%22%3E%3Cb%3Es%3C%2Fb%3E")
    assert page.inner_text("h1") == f"Session {XSS_SESSION}"
    assert page.inner_text(".turn .said") == XSS and page.locator("h1 b").count() == 0
    answer = page.goto(f"{site.url}/ui/memories/{site.ids['globex']}")
    assert answer.status == 404 and page.inner_text("h1") == "Not found"
    assert "Globex" not in page.inner_text("main")
    assert dialogs == []


def test_browser_on_an_open_server_shows_the_banner(page: Any, site: Site) -> None:
    with running(with_inspector(site.memory, ServerConfig(open=True))) as url:
        page.goto(f"{url}/ui/memories")
        assert "This server is open" in page.inner_text(".banner.open")
        assert "gardening" in page.inner_text("table.memories")
        assert page.locator("button:text('Sign out')").count() == 0
        _shot(page, site, "open")
