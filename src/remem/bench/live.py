"""Live benchmark: search speed for one user while the conversation keeps growing.

For each scope size, a fresh temporary store is pre-filled with synthetic chat for one
user, then the same query strings are timed three ways: warm searches with no write in
between, a search right after each one-message ``add`` to a live session, and the add
itself. The query embedding alone is timed in the same run, so the search figures can be
read against it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tqdm import tqdm

import remem
from remem import EmbedderConfig, Memory
from remem.bench.metrics import percentile
from remem.bench.scratch import temporary_memory
from remem.embedders.base import Embedder

DEFAULT_SIZES = (1000, 10_000, 100_000)
USER = "live-user"
SEED = 11
START = datetime(2022, 1, 3, 9, 0)

# -------------------------------------------------------------------- synthetic chat

NAMES = (
    "Ana", "Bruno", "Chloe", "Daniel", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas",
    "Keiko", "Liam", "Marta", "Nadia", "Oscar", "Priya", "Quentin", "Rosa", "Samir", "Tara",
    "Umar", "Vera", "Wes", "Ximena", "Yusuf", "Zoe", "Mateo", "Lena", "Tomas", "Aisha",
)  # fmt: skip
PLACES = (
    "Lisbon", "Porto", "Berlin", "Kyoto", "Oslo", "Seville", "Montreal", "Nairobi",
    "Edinburgh", "Lyon", "Krakow", "Valencia", "Dublin", "Bergen", "Granada", "Hanoi",
    "Cusco", "Tbilisi", "Ghent", "Bologna", "the lake house", "the old harbour",
    "the farmers market", "the climbing gym", "the community garden", "the night market",
)  # fmt: skip
HOBBIES = (
    "pottery", "rock climbing", "salsa dancing", "birdwatching", "sourdough baking",
    "trail running", "watercolour painting", "chess", "kayaking", "knitting", "photography",
    "gardening", "bouldering", "surfing", "woodworking", "calligraphy", "cycling", "yoga",
)  # fmt: skip
RELATIONS = (
    "sister", "brother", "cousin", "neighbour", "coworker", "aunt", "best friend", "mentor",
    "roommate", "grandmother",
)  # fmt: skip
PETS = ("beagle", "tabby cat", "parrot", "rabbit", "golden retriever", "hamster", "tortoise")
PET_NAMES = ("Biscuit", "Pepper", "Mochi", "Rusty", "Luna", "Pixel", "Olive", "Noodle")
FOODS = (
    "ramen", "paella", "pierogi", "shakshuka", "tacos al pastor", "pho", "risotto",
    "jollof rice", "dumplings", "moussaka", "pad thai", "bacalhau", "lemon tart",
)  # fmt: skip
JOBS = (
    "nurse", "data analyst", "carpenter", "teacher", "architect", "chef", "paramedic",
    "translator", "product designer", "lab technician", "librarian", "electrician",
)  # fmt: skip
EVENTS = (
    "jazz concert", "half marathon", "wedding", "book fair", "charity gala", "film festival",
    "science fair", "street parade", "pottery exhibition", "folk festival",
)  # fmt: skip
TOPICS = (
    "ancient Rome", "ocean currents", "urban planning", "the history of tea", "black holes",
    "medieval music", "bees", "volcanoes", "the Silk Road", "mushrooms",
)  # fmt: skip
ADJECTIVES = (
    "amazing", "exhausting", "hilarious", "peaceful", "chaotic", "surprisingly fun",
    "a bit stressful", "unforgettable", "really relaxing", "pretty intense",
)  # fmt: skip
WHEN = (
    "yesterday", "last weekend", "on Saturday", "two days ago", "last week", "this morning",
    "on Friday night", "last month",
)  # fmt: skip
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

STATEMENTS = (
    "I went {hobby} with my {relation} {name} at {place} {when}.",
    "{name} just got a new job as a {job} in {place}.",
    "We finally adopted a {pet} and named it {pet_name}.",
    "Have you ever tried {food}? I had some at a tiny place in {place} {when}.",
    "The {event} {when} was {adj}; {name} could not stop talking about it.",
    "I'm thinking about signing up for a {hobby} class on {weekday} evenings.",
    "My {relation} {name} is visiting from {place} in {month}.",
    "I've been reading a book about {topic} and it's {adj}.",
    "We are planning a trip to {place} in {month}, maybe for {n} days.",
    "Work has been {adj}; my manager {name} wants the report by {weekday}.",
    "I cooked {food} for {name}'s birthday {when} and it turned out {adj}.",
    "I ran {n} kilometres {when} and my knee still hurts a little.",
    "{name} took me to a {event} in {place}, it was {adj}.",
    "{pet_name} the {pet} chewed through my {hobby} gear {when}.",
    "I finally finished my {hobby} project, it took almost {n} weeks.",
    "We used to live in {place} and spent every {weekday} at the market.",
    "My {relation} wants to become a {job}, so {name} is helping with the applications.",
    "I volunteered at the {event} {when}; we raised money for the animal shelter.",
)  # fmt: skip
REPLIES = (
    "That sounds {adj}! How long have you been into {hobby}?",
    "Oh wow, say hi to {name} from me.",
    "Did you take any photos in {place}?",
    "I'd love to try {food} one day, was it spicy?",
    "How is {pet_name} settling in?",
    "That's great news about {name}, a {job} suits them.",
    "Let me know if you want company for the {event} next time.",
    "Haha, {pet_name} sounds like a handful.",
    "Is {month} a good time to visit {place}?",
    "You should rest that knee before the next {hobby} session.",
)  # fmt: skip
QUERIES = (
    "when did I go {hobby} with {name}?",
    "what job did {name} get?",
    "what is the name of the {pet} we adopted?",
    "where did I eat {food}?",
    "how was the {event}?",
    "which day is the {hobby} class?",
    "when is my {relation} visiting from {place}?",
    "what book about {topic} am I reading?",
    "how many days is the trip to {place}?",
    "what did I cook for {name}'s birthday?",
    "how many kilometres did I run {when}?",
    "who took me to the {event} in {place}?",
    "what happened with {pet_name} last week?",
    "where did we live before and what did we do on {weekday}?",
)  # fmt: skip
SLOTS: Mapping[str, Sequence[str]] = {
    "name": NAMES, "place": PLACES, "hobby": HOBBIES, "relation": RELATIONS, "pet": PETS,
    "pet_name": PET_NAMES, "food": FOODS, "job": JOBS, "event": EVENTS, "topic": TOPICS,
    "adj": ADJECTIVES, "when": WHEN, "month": MONTHS, "weekday": WEEKDAYS,
}  # fmt: skip


def fill(template: str, rng: random.Random) -> str:
    """``template`` with each ``{slot}`` drawn from its word list (``{n}``: a number)."""
    values = {slot: rng.choice(words) for slot, words in SLOTS.items()}
    return template.format(n=rng.randint(2, 40), **values)


def live_queries(count: int, seed: int = SEED) -> list[str]:
    """``count`` deterministic, varied questions about the synthetic chat."""
    rng = random.Random(seed * 7919)
    return [fill(QUERIES[i % len(QUERIES)], rng) for i in range(count)]


class SyntheticChat:
    """Deterministic chat between two friends: sessions of 20-40 turns, time advancing.

    ``next_turns(k)`` continues the current conversation; ``sessions(total)`` cuts
    ``total`` turns into sessions a few days apart.
    """

    def __init__(self, seed: int = SEED, speakers: tuple[str, str] = ("Maya", "Sam")) -> None:
        self.rng = random.Random(seed)
        self.speakers = speakers
        self.clock = START
        self.turn = 0

    def next_turns(self, count: int, ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The next ``count`` messages (with ``ids`` as their client ids when given)."""
        out = []
        for n in range(count):
            speaker = self.speakers[self.turn % 2]
            templates = STATEMENTS if self.turn % 2 == 0 or self.rng.random() < 0.4 else REPLIES
            self.clock += timedelta(seconds=self.rng.randint(20, 180))
            message = {
                "role": "user" if self.turn % 2 == 0 else "assistant",
                "name": speaker,
                "content": fill(self.rng.choice(templates), self.rng),
                "timestamp": self.clock.isoformat(),
            }
            if ids is not None:
                message["id"] = ids[n]
            out.append(message)
            self.turn += 1
        return out

    def new_session(self) -> None:
        """Move the clock a few days on, as between two conversations."""
        self.clock += timedelta(days=self.rng.randint(1, 4), hours=self.rng.randint(0, 10))
        self.turn = 0

    def sessions(self, total: int) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """``total`` turns as ``(session_id, messages)``, 20-40 turns a session."""
        done = number = 0
        while done < total:
            self.new_session()
            size = min(self.rng.randint(20, 40), total - done)
            number += 1
            yield f"s{number}", self.next_turns(size)
            done += size


# ---------------------------------------------------------------------------- timing


def elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def latency(values: Sequence[float]) -> dict[str, float]:
    """p50 and p95 of ``values`` (milliseconds), rounded for the report."""
    if not values:
        return {"p50_ms": 0.0, "p95_ms": 0.0}
    return {
        "p50_ms": round(percentile(values, 50), 3),
        "p95_ms": round(percentile(values, 95), 3),
    }


@dataclass
class Samples:
    """Timings of one measured loop: wall clock around the call and ``took_ms``."""

    wall: list[float]
    took: list[float]

    def report(self) -> dict[str, float]:
        took = latency(self.took)
        return {**latency(self.wall), "took_p50_ms": took["p50_ms"], "took_p95_ms": took["p95_ms"]}


def prefill(memory: Memory, chat: SyntheticChat, turns: int, progress: bool) -> dict[str, Any]:
    """Add ``turns`` turns for the one user, one ``add`` per session."""
    started = time.perf_counter()
    sessions = 0
    with tqdm(total=turns, desc=f"prefill {turns:,}", unit="turn", disable=not progress) as bar:
        for session, messages in chat.sessions(turns):
            memory.add(messages, user_id=USER, session_id=session)
            sessions += 1
            bar.update(len(messages))
    seconds = time.perf_counter() - started
    return {
        "turns": turns,
        "sessions": sessions,
        "seconds": round(seconds, 3),
        "turns_per_second": round(turns / seconds, 1) if seconds else 0.0,
    }


def time_embedding(embedder: Embedder, queries: Sequence[str]) -> dict[str, float]:
    """The query embedding alone, as ``search`` does it (``embed_one``)."""
    embedder.embed_one(queries[0])  # warm-up
    timings = []
    for query in queries:
        started = time.perf_counter()
        embedder.embed_one(query)
        timings.append(elapsed_ms(started))
    return latency(timings)


def time_warm(
    memory: Memory, queries: Sequence[str], warmup: int, reference: datetime, bar: tqdm[Any]
) -> Samples:
    """The queries one after another, no write in between (after ``warmup`` uncounted)."""
    samples = Samples([], [])
    for n, query in enumerate([*queries[:warmup], *queries]):
        started = time.perf_counter()
        hits = memory.search(query, user_id=USER, reference_time=reference)
        wall = elapsed_ms(started)
        if n >= warmup:
            samples.wall.append(wall)
            samples.took.append(hits.took_ms)
        bar.update()
    return samples


def time_after_add(
    memory: Memory, chat: SyntheticChat, queries: Sequence[str], warmup: int, bar: tqdm[Any]
) -> tuple[Samples, list[float]]:
    """Add one message to a live session, then search at once; time both."""
    chat.new_session()
    searches, adds = Samples([], []), []
    for n, query in enumerate([*queries[:warmup], *queries]):
        message = chat.next_turns(1)
        started = time.perf_counter()
        memory.add(message, user_id=USER, session_id="live")
        added = elapsed_ms(started)
        started = time.perf_counter()
        hits = memory.search(query, user_id=USER, reference_time=chat.clock)
        wall = elapsed_ms(started)
        if n >= warmup:
            adds.append(added)
            searches.wall.append(wall)
            searches.took.append(hits.took_ms)
        bar.update()
    return searches, adds


def measure_size(
    size: int, embedder: Embedder, recipe: str, rounds: int, warmup: int, progress: bool
) -> dict[str, Any]:
    """One scope size on a fresh temporary store: pre-fill, then the three timings."""
    queries = live_queries(rounds)
    with temporary_memory(embedder, recipe, "live") as memory:
        chat = SyntheticChat()
        filled = prefill(memory, chat, size, progress)
        stats = memory.stats()
        total = 2 * (warmup + rounds)
        with tqdm(total=total, desc=f"measure {size:,}", disable=not progress) as bar:
            embed = time_embedding(memory.embedder, queries)
            warm = time_warm(memory, queries, warmup, chat.clock, bar)
            after, adds = time_after_add(memory, chat, queries, warmup, bar)
    ratio = percentile(after.wall, 50) / percentile(warm.wall, 50)
    return {
        "size": size,
        "prefill": filled,
        "memories": stats.memories,
        "memories_by_kind": dict(stats.memories_by_kind),
        "embed_query": embed,
        "warm_search": warm.report(),
        "search_after_add": after.report(),
        "add": latency(adds),
        "after_add_over_warm": round(ratio, 3),
    }


def run_live(
    sizes: Sequence[int] = DEFAULT_SIZES,
    embedder: Embedder | None = None,
    recipe: str = "default",
    rounds: int = 50,
    warmup: int = 5,
    progress: bool = True,
    on_size: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Measure every size in ``sizes`` (turns for one user); returns the whole report.

    ``embedder`` defaults to the default embedder, loaded once for all sizes.
    """
    own = embedder is None
    model = embedder if embedder is not None else default_embedder()
    try:
        results = []
        for size in sizes:
            result = measure_size(size, model, recipe, rounds, min(warmup, rounds), progress)
            results.append(result)
            if on_size:
                on_size(result)
        return {
            "benchmark": "live",
            "recipe": recipe,
            "embedder": model.model_id,
            "version": remem.__version__,
            "rounds": rounds,
            "warmup": min(warmup, rounds),
            "sizes": results,
        }
    finally:
        if own:
            model.close()


def default_embedder() -> Embedder:
    from remem.registry import create_embedder

    return create_embedder(EmbedderConfig())
