"""A live search index of one scope: it takes in changed rows instead of being rebuilt.

Rows are appended in the order the store reports them; a changed or deleted memory's old
row is marked dead and, when changed, its new state appended. Every structure retrieval
needs (vectors, BM25 postings with the scope's own statistics, whole-session documents,
conversation slots, entity links, time links) is updated per row, so the cost of taking
in a write does not grow with the size of the scope. Statistics come only from this
scope's live rows: no other scope's data can move its scores.
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from remem.annotations import TimeLink, keyword_terms, query_terms, stem, time_links, words
from remem.formation.derived import DERIVED_KINDS
from remem.index import bm25
from remem.index.ann import Approximate
from remem.index.arrays import (
    NO_ROWS,
    NO_SCORES,
    Column,
    Floats,
    Kept,
    Rows,
    best_of,
    sum_by_row,
    top,
)
from remem.index.rules import entity_rows
from remem.models import MEMORY_KINDS, MemoryRecord, recalled
from remem.stores.base import AccessRow, Changes, EntityRow, IndexRow, MemoryFilter, session_key

T = TypeVar("T")
Mask = npt.NDArray[np.bool_]
# memory records kept per scope index (taken in with their rows, the latest used kept):
# a search reads its hits from here, not the store, in a scope of up to this many rows
RECORDS_KEPT = 16_384
MASKS_KEPT = 16  # filter masks kept per scope index
# Kinds the HNSW graph leaves out: searches return session summaries only when asked
# (``retrieval.run.HIT_KINDS``), and they crowd the space near questions (design notes)
UNGRAPHED_KINDS = frozenset({"summary"})
MATCHES_FLOOR = 65536  # keyword match rows kept per scope index beyond four per row
NORMS_ROWS = 200_000  # scopes up to this many rows work out every row's BM25 norm at once
# Estimated bytes of what an index keeps outside its row columns (``LiveScope.nbytes``): per
# row (its id, kind, session, times and metadata in lists and dicts), per posting entry
# (its row and tf in the term's columns with their growth slack, and the term score kept
# for searches), per kept memory record.
ROW_BYTES, POSTING_BYTES, RECORD_BYTES = 600, 48, 4096
_FAR = np.datetime64("9999-12-31T23:59:59", "us")
_NEVER = np.datetime64("0001-01-01T00:00:00", "us")


def _when(moment: datetime | None) -> np.datetime64:
    return np.datetime64(moment, "us") if moment is not None else _NEVER


class LiveScope:
    """The search index of one scope (see the module docstring). Not thread-safe by
    itself: ``LiveIndex`` holds ``lock`` while a search reads or a refresh writes it."""

    def __init__(self) -> None:
        self.revision = -1
        self.dimensions = 0
        self.ids: list[str] = []
        self.kinds: list[str] = []
        self.sessions: list[str] = []
        self.positions: list[int] = []
        self.occurred: list[datetime | None] = []
        self.expires: list[datetime | None] = []
        self.metadata: list[Any] = []
        self.row_of: dict[str, int] = {}
        self._texts: list[tuple[str, str]] = []  # (text, index_text) to undo a row
        self._alive, self._current = Column(np.bool_), Column(np.bool_)
        self._kind = Column(np.int8)
        self._when, self._expiry = Column("datetime64[us]"), Column("datetime64[us]")
        self._expiring = 0  # rows ever added with an expiry time
        # when each row's memory was current (``IndexRow.valid_from``/``valid_to``): as_of
        self._start, self._end = Column("datetime64[us]"), Column("datetime64[us]")
        self._said = Column("datetime64[D]")
        # what ranking by retention reads (``retention_columns``); recalls change the last
        # two in place (``apply``: ``Changes.accessed``)
        self._importance, self._pinned = Column(np.float64), Column(np.bool_)
        self._strength, self._recalled = Column(np.float64), Column("datetime64[us]")
        self._length = Column(np.float64)
        self._vectors: Column | None = None
        self._has_vector = Column(np.bool_)
        self._graphed = Column(np.bool_)  # rows the HNSW graph may hold (``_add_vector``)
        self._approximate = Approximate()  # an HNSW graph once the scope is big (index.ann)
        self.last_vector_search = "exact"  # how the last ``vector_top`` searched: or "graph"
        self._postings: dict[str, tuple[Column, Column]] = {}  # term -> rows, tfs
        self._df: Counter[str] = Counter()
        self._docs, self._total_length = 0, 0.0
        self._posting_entries, self._text_bytes = 0, 0
        self.session_keys: list[str] = []  # code -> session key
        self._session_codes: dict[str, int] = {}
        self._session_code = Column(np.int64)  # per row
        self._session_postings: dict[str, dict[int, int]] = {}  # stem -> {session code: tf}
        self._session_length = Column(np.float64)  # per session code: its turns' stems
        self._session_words_total, self._session_count = 0.0, 0  # over sessions with words
        self.entities: list[EntityRow] = []
        self._entity_of: dict[tuple[str, str, str], int] = {}
        self.entity_rows: dict[str, list[int]] = {}
        self.entities_with_word: dict[str, list[int]] = {}
        self.entity_kinds: dict[str, str] = {}
        self.entity_keys: list[str] = []  # key code -> entity key (entities share a key)
        self.entity_key_words: list[frozenset[str]] = []  # key code -> the key's words
        self._key_code: dict[str, int] = {}
        self._entity_key = Column(np.int64)  # per entity row: its key's code
        self._entity_speaker = Column(np.bool_)  # per entity row: a speaker
        self._edges = (Column(np.int64), Column(np.int64), Column(np.float64))
        self._edge_alive = Column(np.bool_)
        self._edges_of: dict[int, list[int]] = {}
        self.times_by_row: dict[int, list[TimeLink]] = {}
        self._dated = Column(np.bool_)  # mentions a period (not only a vague time)
        self._periods = (Column(np.int64), Column("datetime64[D]"), Column("datetime64[D]"))
        self._period_alive = Column(np.bool_)
        self._periods_of: dict[int, list[int]] = {}
        self.slots: dict[tuple[str, int], int] = {}  # (session, position) -> turn row
        self._adjacent = Column(np.int64, 2)  # per row: the turn rows before and after
        # turn rows by the message they hold (user, agent, message id), and the messages
        # each derived memory cites (the same keys)
        self._turn_of: dict[tuple[str, str, str], int] = {}
        self._holds: dict[int, list[tuple[str, str, str]]] = {}  # turn row -> its keys
        self.cites: dict[int, list[tuple[str, str, str]]] = {}  # derived row -> cited keys
        self._conversation = Column(np.int64)  # per row (``conversation_codes``)
        self.memo: dict[str, Any] = {}
        self._records: OrderedDict[int, MemoryRecord] = OrderedDict()
        self._accessed: dict[int, AccessRow] = {}  # kept records' newer recall statistics
        self._matches: Kept[tuple[str, ...], tuple[Rows, Floats]] = Kept()
        self._masks: Kept[str, Mask] = Kept()

    # -- taking in changes ---------------------------------------------------------------

    def apply(self, changes: Changes) -> None:
        """Take in what changed since ``self.revision`` (deletions first, then rows, then
        recall statistics, which change two columns in place and keep every cache)."""
        for memory_id in changes.deleted:
            self._kill(memory_id)
        for row in changes.rows:
            self._kill(row.id)
            self._append(row)
        if changes.deleted or changes.rows:
            self.memo.clear()
            self._matches.clear()
            self._masks.clear()
        for access in changes.accessed:
            self._recall(access)
        self.revision = changes.revision

    def _recall(self, access: AccessRow) -> None:
        """A memory's new strength and last recall, in place (no row is added)."""
        r = self.row_of.get(access.id)
        if r is None:
            return
        self._strength.data[r] = access.strength
        if access.last_accessed_at is not None:
            self._recalled.data[r] = _when(access.last_accessed_at)
        if r in self._records:  # brought up to date when read (``records``)
            self._accessed[r] = access

    def _append(self, row: IndexRow) -> None:
        r = len(self.ids)
        key = session_key(row.user_id, row.agent_id, row.session_id)
        self.ids.append(row.id)
        self.kinds.append(row.kind)
        self.sessions.append(key)
        self._session_code.append(self._code(key))
        self.positions.append(row.position)
        self.occurred.append(row.occurred_at)
        self.expires.append(row.expires_at)
        self.metadata.append(row.metadata)
        self._texts.append((row.text, row.index_text))
        self._text_bytes += len(row.text) + len(row.index_text)
        self.row_of[row.id] = r
        self._alive.append(True)
        self._current.append(row.current)
        self._kind.append(MEMORY_KINDS.index(row.kind) if row.kind in MEMORY_KINDS else -1)
        self._when.append(_when(row.occurred_at or row.created_at))
        said = row.occurred_at
        self._said.append(np.datetime64(said.date(), "D") if said else np.datetime64("NaT"))
        self._expiry.append(_when(row.expires_at) if row.expires_at is not None else _FAR)
        self._start.append(_when(row.valid_from or row.created_at))
        self._end.append(_when(row.valid_to) if row.valid_to is not None else _FAR)
        self._importance.append(row.importance)
        self._pinned.append(row.pinned)
        self._strength.append(row.strength)
        self._recalled.append(_when(row.last_accessed_at or row.created_at))
        self._expiring += row.expires_at is not None
        self._add_vector(row.vector, row.kind not in UNGRAPHED_KINDS)
        self._index_terms(r, row.index_text)
        self._adjacent.append((-1, -1))
        if row.kind == "turn":
            self._session_words(key, row.text, 1)
            if row.position > 0:
                self._take_slot(r, key, row.position)
        self._link_entities(r, row)
        self._link_periods(r, time_links(row.attributes))
        self._link_sources(r, row)
        if row.record is not None:
            self._keep(r, row.record)

    def _kill(self, memory_id: str) -> None:
        r = self.row_of.pop(memory_id, None)
        if r is None:
            return
        self._records.pop(r, None)
        self._accessed.pop(r, None)
        self._alive.data[r] = False
        text, index_text = self._texts[r]
        terms = Counter(keyword_terms(index_text))
        for term in terms:
            self._df[term] -= 1
        self._docs -= 1
        self._total_length -= sum(terms.values())
        if self.kinds[r] == "turn":
            self._session_words(self.sessions[r], text, -1)
            if self.slots.get((self.sessions[r], self.positions[r])) == r:
                del self.slots[(self.sessions[r], self.positions[r])]
            adjacent = self._adjacent.data
            for side, other in enumerate(adjacent[r].tolist()):
                if other >= 0 and adjacent[other, 1 - side] == r:
                    adjacent[other, 1 - side] = -1
        self._unlink_sources(r)
        for edge in self._edges_of.pop(r, ()):
            self._edge_alive.data[edge] = False
        self.times_by_row.pop(r, None)
        for link in self._periods_of.pop(r, ()):
            self._period_alive.data[link] = False

    def _add_vector(self, vector: npt.NDArray[np.float32] | None, graphed: bool) -> None:
        if vector is not None and self._vectors is None:
            self.dimensions = int(vector.shape[0])
            self._vectors = Column(np.float32, self.dimensions)
            for _ in range(len(self.ids) - 1):
                self._vectors.append(0.0)
        if self._vectors is not None:
            ok = vector is not None and vector.shape[0] == self.dimensions
            self._vectors.append(_unit(vector) if ok and vector is not None else 0.0)
            self._has_vector.append(ok)
            self._graphed.append(ok and graphed)
        else:
            self._has_vector.append(False)
            self._graphed.append(False)

    def _index_terms(self, r: int, index_text: str) -> None:
        terms = Counter(keyword_terms(index_text))
        for term, tf in terms.items():
            postings = self._postings.get(term)
            if postings is None:
                postings = self._postings[term] = (Column(np.int64, capacity=2),
                                                   Column(np.float64, capacity=2))  # fmt: skip
            rows, tfs = postings
            rows.append(r)
            tfs.append(tf)
            self._df[term] += 1
        self._posting_entries += len(terms)
        length = sum(terms.values())
        self._length.append(float(length))
        self._docs += 1
        self._total_length += length

    def _code(self, key: str) -> int:
        code = self._session_codes.get(key)
        if code is None:
            code = self._session_codes[key] = len(self.session_keys)
            self.session_keys.append(key)
            self._session_length.append(0.0)
        return code

    def _session_words(self, key: str, text: str, sign: int) -> None:
        """Add (``sign`` 1) or take away (-1) a turn's stems from its session's document."""
        code = self._session_codes[key]
        counts = Counter(stem(w) for w in words(text))
        for term, count in counts.items():
            postings = self._session_postings.setdefault(term, {})
            tf = postings[code] = postings.get(code, 0) + sign * count
            if tf <= 0:
                del postings[code]
        lengths = self._session_length.data
        before = float(lengths[code])
        after = lengths[code] = before + sign * sum(counts.values())
        self._session_words_total += after - before
        self._session_count += int(after > 0) - int(before > 0)

    def _take_slot(self, r: int, key: str, position: int) -> None:
        """Place a turn at its position in its conversation, linked to the turns beside it."""
        self.slots[(key, position)] = r
        adjacent = self._adjacent.data
        for side, step in ((0, -1), (1, 1)):
            other = self.slots.get((key, position + step))
            if other is not None:
                adjacent[r, side] = other
                adjacent[other, 1 - side] = r

    def _link_periods(self, r: int, periods: list[TimeLink]) -> None:
        """Time links by row (``period_of``), and the periods as columns (``periods``)."""
        if periods:
            self.times_by_row[r] = periods
        dated = [p for p in periods if p.kind != "vague"]
        self._dated.append(bool(dated))
        rows, starts, ends = self._periods
        for link in dated:
            self._periods_of.setdefault(r, []).append(rows.size)
            rows.append(r)
            starts.append(np.datetime64(link.start, "D"))
            ends.append(np.datetime64(link.end, "D"))
            self._period_alive.append(True)

    def _link_sources(self, r: int, row: IndexRow) -> None:
        """A turn is found by the message it holds; a derived memory keeps what it cites
        (resolved when searched, so a turn written later or rewritten is still found)."""
        keys = [(row.user_id, row.agent_id, m) for m in dict.fromkeys(row.source_ids)]
        if row.kind == "turn" and keys:
            self._holds[r] = keys
            for key in keys:
                self._turn_of[key] = r
        elif row.kind in DERIVED_KINDS and keys:
            self.cites[r] = keys
        code = int(self._session_code.data[r])
        if row.kind in DERIVED_KINDS:
            turns = [t for key in keys if (t := self._turn_of.get(key)) is not None]
            code = int(self._session_code.data[turns[0]]) if turns else code
            code = -1 if not turns and not row.session_id else code
        self._conversation.append(code)

    def _unlink_sources(self, r: int) -> None:
        self.cites.pop(r, None)
        for key in self._holds.pop(r, ()):
            if self._turn_of.get(key) == r:
                del self._turn_of[key]

    def _link_entities(self, r: int, row: IndexRow) -> None:
        for link in entity_rows(row.attributes):
            owner = (row.user_id, row.agent_id, link.key)
            j = self._entity_of.get(owner)
            if j is None:
                j = self._entity_of[owner] = len(self.entities)
                self.entities.append(EntityRow(link.key, link.name, link.kind))
                code = self._key_code.get(link.key)
                if code is None:
                    code = self._key_code[link.key] = len(self.entity_keys)
                    self.entity_keys.append(link.key)
                    self.entity_key_words.append(frozenset(link.key.split()))
                self._entity_key.append(code)
                self._entity_speaker.append(link.kind == "speaker")
                self.entity_rows.setdefault(link.key, []).append(j)
                self.entity_kinds.setdefault(link.key, link.kind)
                for word in set(link.key.split()):
                    self.entities_with_word.setdefault(word, []).append(j)
            mem, ent, weight = self._edges
            self._edges_of.setdefault(r, []).append(mem.size)
            mem.append(r)
            ent.append(j)
            weight.append(link.weight)
            self._edge_alive.append(True)

    # -- reading -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.ids)

    def dead_rows(self) -> int:
        """Rows that are no memory's current state any more (replaced or deleted)."""
        return len(self.ids) - len(self.row_of)

    def nbytes(self) -> int:
        """About how much memory this index takes, with its caches full: the numpy
        columns exactly, the Python parts estimated (``ROW_BYTES`` and the like)."""
        columns = [v for v in vars(self).values() if isinstance(v, Column)]
        columns += [c for v in vars(self).values() if isinstance(v, tuple)
                    for c in v if isinstance(c, Column)]  # fmt: skip
        rows = len(self.ids)
        matches = 16 * (4 * rows + MATCHES_FLOOR) + MASKS_KEPT * rows
        return (sum(c.data.nbytes for c in columns) + rows * ROW_BYTES + self._text_bytes
                + self._posting_entries * POSTING_BYTES + matches
                + min(rows, RECORDS_KEPT) * RECORD_BYTES + self._approximate.nbytes())  # fmt: skip

    def alive(self, row: int) -> bool:
        """Whether a row is a memory's current state (not deleted or replaced)."""
        return bool(self._alive.data[row])

    def text(self, row: int) -> str:
        """A row's memory text (as shown, not the index text)."""
        return self._texts[row][0]

    @property
    def mentions(self) -> list[tuple[int, int, float]]:
        """Live (memory row, entity row, weight) links."""
        mem, ent, weight = (c.view() for c in self._edges)
        keep = self._edge_alive.view()
        return list(zip(mem[keep].tolist(), ent[keep].tolist(), weight[keep].tolist(),
                        strict=True))  # fmt: skip

    def has_mentions(self) -> bool:
        """Whether any live memory names an entity."""
        return bool(self._edges_of)

    def mentions_of(self, rows: Iterable[int]) -> tuple[Rows, Rows, Floats]:
        """The entity links of ``rows`` as arrays (memory rows, entity rows, weights), row
        by row in the order given, each row's links in the order it made them."""
        edges = np.array([e for r in rows for e in self._edges_of.get(r, ())], dtype=np.int64)
        mem, ent, weight = (c.data[edges] for c in self._edges)
        return mem, ent, weight

    def entity_columns(self) -> tuple[Rows, npt.NDArray[np.bool_]]:
        """Per entity row: its key's code (``entity_keys``), and whether it is a speaker."""
        return self._entity_key.view(), self._entity_speaker.view()

    def edges(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[Any]]:
        """Live memory-entity edges as arrays (memory rows, entity rows, weights)."""
        keep = self._edge_alive.view()
        mem, ent, weight = (c.view()[keep] for c in self._edges)
        return mem, ent, weight

    def records(
        self, rows: Sequence[int], load: Callable[[list[str]], list[MemoryRecord]]
    ) -> list[MemoryRecord]:
        """The memory records of ``rows``: kept ones (taken in with their rows, or read
        before), the rest read with ``load`` (by id). A row is one state of a memory (a
        change appends a new row), so a kept record is exactly what the store holds at
        this index's revision; the last ``RECORDS_KEPT`` taken in or used are kept."""
        kept = self._records
        missing = [self.ids[r] for r in rows if r not in kept]
        loaded: dict[int, MemoryRecord] = {}
        for record in load(missing) if missing else ():
            row = self.row_of.get(record.id)
            if row is not None:
                loaded[row] = record
        out = [found for r in rows if (found := loaded.get(r) or self._kept(r)) is not None]
        for row, record in loaded.items():
            self._keep(row, record)
        return out

    def _kept(self, row: int) -> MemoryRecord | None:
        """A kept record brought up to its latest recall statistics (marked used)."""
        kept = self._records
        if row not in kept:
            return None
        kept.move_to_end(row)
        access = self._accessed.pop(row, None)
        if access is not None:  # kept records stay exactly what the store holds
            kept[row] = recalled(kept[row], access.strength, access.access_count,
                                 access.last_accessed_at)  # fmt: skip
        return kept[row]

    def _keep(self, row: int, record: MemoryRecord) -> None:
        kept = self._records
        kept[row] = record
        kept.move_to_end(row)
        self._accessed.pop(row, None)  # read at this revision: current
        while len(kept) > RECORDS_KEPT:
            self._accessed.pop(kept.popitem(last=False)[0], None)

    def memo_get(self, name: str, build: Callable[[LiveScope], T]) -> T:
        """A structure derived from the index, built once until the index changes."""
        if name not in self.memo:
            self.memo[name] = build(self)
        value: T = self.memo[name]
        return value

    def mask(self, flt: MemoryFilter, now: datetime) -> Mask:
        """Rows the filter admits (kinds, time bounds, metadata, ids, current, expiry). The
        part that does not move with the clock is kept until the index changes."""
        key = "mask:" + repr((flt.current_only, flt.kinds, flt.since, flt.until, flt.ids,
                              sorted(flt.metadata.items()), flt.as_of))  # fmt: skip
        fixed = self._masks.get(key)
        if fixed is None:
            fixed = self._fixed_mask(flt)
            fixed.flags.writeable = False  # shared by every search until the index changes
            self._masks.put(key, fixed, fixed.size, MASKS_KEPT * max(len(self.ids), 1))
        if not (flt.current_only and flt.as_of is None and self._expiring):
            return fixed
        out: Mask = fixed & (self._expiry.view() > np.datetime64(now, "us"))
        return out

    def _fixed_mask(self, flt: MemoryFilter) -> Mask:
        out: Mask = self._alive.view().copy()
        if flt.as_of is not None:  # current then, not now
            at = np.datetime64(flt.as_of, "us")
            out &= (self._start.view() <= at) & (self._end.view() > at)
            out &= self._expiry.view() > at
        elif flt.current_only:
            out &= self._current.view()
        if flt.kinds:
            codes = [MEMORY_KINDS.index(k) for k in flt.kinds if k in MEMORY_KINDS]
            out &= np.isin(self._kind.view(), codes)
        if flt.since is not None:
            out &= self._when.view() >= np.datetime64(flt.since, "us")
        if flt.until is not None:
            out &= self._when.view() <= np.datetime64(flt.until, "us")
        if flt.ids:
            wanted = np.zeros(len(self.ids), dtype=bool)
            wanted[[self.row_of[i] for i in flt.ids if i in self.row_of]] = True
            out &= wanted
        if flt.metadata:
            for r in np.flatnonzero(out):
                meta = self.metadata[r]
                if any(meta.get(k, _MISSING) != v for k, v in flt.metadata.items()):
                    out[r] = False
        return out

    def keyword_search(
        self, terms: Iterable[str], mask: Mask, limit: int
    ) -> list[tuple[str, float]]:
        """BM25 over the rows' index text with this scope's statistics; any term may match."""
        return self.named(*top(*self.keyword_scores(terms, mask), limit))

    def keyword_scores(self, terms: Iterable[str], mask: Mask) -> tuple[Rows, Floats]:
        """Every row the mask admits that matches a term, and its BM25 score (unordered).
        Costs the matches, not the scope: no array the size of the scope is touched; the
        latest term sets' matches are kept until the index changes (in all at most four
        rows per row of the scope)."""
        wanted = tuple(dict.fromkeys(t for term in terms for t in query_terms(term)))
        found: tuple[Rows, Floats] | None
        if len(wanted) == 1:  # one term's scores are kept already, and all positive
            found = self._term_hits(wanted[0]) or (NO_ROWS, NO_SCORES)
        else:
            found = self._matches.get(wanted)
        if found is None:
            found = self._match(wanted)
            self._matches.put(wanted, found, found[0].size, 4 * len(self.ids) + MATCHES_FLOOR)
        rows, scores = found
        keep = mask[rows]
        return rows[keep], scores[keep]

    def _match(self, wanted: tuple[str, ...]) -> tuple[Rows, Floats]:
        found = [hit for term in wanted if (hit := self._term_hits(term)) is not None]
        if not found:
            return NO_ROWS, NO_SCORES
        return sum_by_row([r for r, _ in found], [s for _, s in found])  # all scores > 0

    def _term_hits(self, term: str) -> tuple[Rows, Floats] | None:
        """One term's rows and BM25 scores (kept until the index next changes)."""
        key = f"bm25:{term}"
        hit: tuple[Rows, Floats] | None = self.memo.get(key)
        if hit is None:
            postings = self._posting_arrays(term)
            if postings is None or self._docs <= 0:
                return None
            rows, tf = postings
            weight = bm25.idf(self._docs, self._df[term])
            hit = self.memo[key] = (rows, bm25.normed_scores(tf, self._norms(rows), weight,
                                                             bm25.TURN_K1))  # fmt: skip
        return hit

    def _norms(self, rows: Rows) -> Floats:
        """The BM25 length norms of ``rows``: worked out for every row at once (until the
        index changes) when the scope is at most ``NORMS_ROWS``, else for these rows."""
        mean = self._total_length / self._docs
        if len(self.ids) > NORMS_ROWS:
            return bm25.length_norms(self._length.view()[rows], mean, bm25.TURN_K1, bm25.TURN_B)
        norms: Floats | None = self.memo.get("norms")
        if norms is None:
            every = bm25.length_norms(self._length.view(), mean, bm25.TURN_K1, bm25.TURN_B)
            norms = self.memo["norms"] = every
        return norms[rows]

    def _posting_arrays(self, term: str) -> tuple[npt.NDArray[np.int64], Any] | None:
        postings = self._postings.get(term)
        if postings is None:
            return None
        rows, tfs = postings
        return rows.view(), tfs.view()

    def vector_search(
        self, vector: npt.NDArray[np.float32], mask: Mask, limit: int
    ) -> list[tuple[str, float]]:
        """Exact cosine similarity over the rows' vectors."""
        return self.named(*self.vector_top(vector, mask, limit))

    def graph_nodes(self) -> int:
        """Distinct vectors in the scope's HNSW graph (0 until a search builds it)."""
        return self._approximate.nodes()

    def vector_top(
        self,
        vector: npt.NDArray[np.float32],
        mask: Mask,
        limit: int,
        exact: bool = False,
        ordered: bool = True,
    ) -> tuple[Rows, Floats]:
        """The ``limit`` rows the mask admits most similar to ``vector``, best first (in
        no particular order unless ``ordered``): from an HNSW graph's candidates in a big
        scope (``index.ann``, rescored exactly), else (or when ``exact``) by scanning
        every row."""
        if self._vectors is None or vector.shape[0] != self.dimensions:
            return NO_ROWS, NO_SCORES
        unit, matrix = _unit(vector), self._vectors.view()
        admitted = mask & self._has_vector.view()
        count = int(np.count_nonzero(admitted))
        k = min(limit, count)
        if k <= 0:
            return NO_ROWS, NO_SCORES
        near = None if exact else self._approximate.top(matrix, self._graphed.view(), unit,
                                                        admitted, count, k)  # fmt: skip
        self.last_vector_search = "exact" if near is None else "graph"
        pick = top if ordered else best_of
        if near is not None:
            return pick(near, np.vecdot(matrix[near], unit).astype(np.float64), k)
        # one dot product per row (``vecdot``: a single-threaded SIMD loop), not a BLAS
        # matrix-vector product: OpenBLAS's threads and onnxruntime's (which spin for a
        # while after embedding the query) fight over the two cores; ``einsum`` is one
        # thread too but about 1.5x slower (docs/design-notes.md)
        scores = np.vecdot(matrix, unit)
        scores[~admitted] = -np.inf
        rows = np.argpartition(-scores, k - 1)[:k] if k < scores.size else np.arange(k)
        if ordered:
            rows = rows[np.lexsort((rows, -scores[rows]))]
        return rows, scores[rows].astype(np.float64)

    def named(self, rows: Rows, scores: Floats) -> list[tuple[str, float]]:
        """Rows and scores as (memory id, score) pairs."""
        return [(self.ids[r], float(s)) for r, s in zip(rows.tolist(), scores.tolist(),
                                                         strict=True)]  # fmt: skip

    def session_search(self, terms: Sequence[str], limit: int) -> list[tuple[str, float]]:
        """BM25 over whole conversations (each session's turns as one bag of stems), with
        the statistics of this scope's sessions; only sessions having a term are read."""
        codes, scores = self.session_scores(terms)
        codes, scores = top(codes, scores, limit)
        named = sorted(zip((self.session_keys[c] for c in codes.tolist()), scores.tolist(),
                           strict=True), key=lambda kv: (-kv[1], kv[0]))  # fmt: skip
        return named

    def session_scores(self, terms: Sequence[str]) -> tuple[Rows, Floats]:
        """Sessions matching any term (as codes) and their BM25 scores, unordered."""
        wanted = sorted({stem(w) for term in terms for w in words(term)})
        if not wanted or self._session_count <= 0:
            return NO_ROWS, NO_SCORES
        found = [hit for term in wanted if (hit := self._session_hits(term)) is not None]
        found_codes, found_scores = [c for c, _ in found], [s for _, s in found]
        if not found_codes:
            return NO_ROWS, NO_SCORES
        return sum_by_row(found_codes, found_scores)

    def _session_hits(self, term: str) -> tuple[Rows, Floats] | None:
        """One stem's sessions (codes) and BM25 scores (kept until the index changes)."""
        key = f"sessions:{term}"
        hit: tuple[Rows, Floats] | None = self.memo.get(key)
        if hit is None:
            postings = self._session_postings.get(term)
            if not postings:
                return None
            codes = np.fromiter(postings.keys(), dtype=np.int64, count=len(postings))
            tf = np.fromiter(postings.values(), dtype=np.float64, count=len(postings))
            mean = self._session_words_total / self._session_count
            weight = bm25.idf(self._session_count, len(postings))
            scores = bm25.term_scores(tf, self._session_length.view()[codes], mean, weight)
            hit = self.memo[key] = (codes, scores)
        return hit

    def kind_codes(self) -> npt.NDArray[np.int8]:
        """Each row's kind as its index in ``MEMORY_KINDS`` (-1: unknown)."""
        return self._kind.view()

    def conversation_codes(self) -> Rows:
        """Each row's conversation as a session code, for the steps that group by one: a
        turn's own session; a derived memory's first cited turn's (as indexed when it was
        written), else its own session, else -1 (unknown) when written outside any
        session: facts gathered from many sessions are not one conversation."""
        return self._conversation.view()

    def session_codes(self) -> Rows:
        """Each row's session as a small integer (``session_keys`` names them)."""
        return self._session_code.view()

    def neighbour_rows(self, rows: Rows) -> tuple[Rows, Rows]:
        """Pairs (i, row): ``row`` is a turn adjacent to the turn ``rows[i]``."""
        adjacent = self._adjacent.view()[rows].ravel()
        source = np.repeat(np.arange(rows.size, dtype=np.int64), 2)
        keep = adjacent >= 0
        return source[keep], adjacent[keep]

    def cited_rows(self, rows: Rows) -> tuple[Rows, Rows]:
        """Pairs (i, row): ``row`` is a live turn holding a message that the derived
        memory ``rows[i]`` cites, in citation order."""
        source: list[int] = []
        cited: list[int] = []
        for i, r in enumerate(rows.tolist()):
            for key in self.cites.get(r, ()):
                turn = self._turn_of.get(key)
                if turn is not None:
                    source.append(i)
                    cited.append(turn)
        return np.array(source, dtype=np.int64), np.array(cited, dtype=np.int64)

    def retention_columns(self) -> tuple[Floats, Mask, Floats, npt.NDArray[Any]]:
        """Per row: importance, pinned, strength (days) and when its forgetting curve
        restarted (its last recall, else its storing; ``datetime64[us]``)."""
        return (self._importance.view(), self._pinned.view(), self._strength.view(),
                self._recalled.view())  # fmt: skip

    def dated(self) -> Mask:
        """Which rows mention a period (a time that is not vague)."""
        return self._dated.view()

    def periods(self) -> tuple[Rows, npt.NDArray[Any], npt.NDArray[Any]]:
        """Live periods the rows mention: (row, first day, last day) columns."""
        keep = self._period_alive.view()
        rows, starts, ends = (c.view()[keep] for c in self._periods)
        return rows, starts, ends

    def said_days(self) -> npt.NDArray[Any]:
        """The day each row was said (``datetime64[D]``; NaT when unknown)."""
        return self._said.view()

    def period_of(self, row: int) -> tuple[date, date] | None:
        """The period a memory mentions, else the day it was said."""
        for link in self.times_by_row.get(row, ()):
            if link.kind != "vague":
                return link.start, link.end
        said = self.occurred[row]
        return (said.date(), said.date()) if said is not None else None


_MISSING = object()


def _unit(vector: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    data = np.asarray(vector, dtype=np.float32)
    norm = float(np.sqrt(data.dot(data)))  # what ``np.linalg.norm`` computes, without its checks
    out: npt.NDArray[np.float32] = data / norm if norm > 0 and math.isfinite(norm) else data
    return out
