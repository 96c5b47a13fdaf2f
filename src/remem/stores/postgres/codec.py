"""How remem's values cross into PostgreSQL and back unchanged: psycopg adapters.

The store contract round-trips any Python string, naive UTC time and JSON value; three of
PostgreSQL's types need help to keep that promise, and it is given here, once, for every
query (parameters and results alike), so no other module converts values by hand:

- **Text** cannot hold U+0000. Strings are escaped on the way in (U+FFFF becomes
  U+FFFF U+FFFF, U+0000 becomes U+FFFF "0") and unescaped on the way out. U+FFFF is a
  Unicode noncharacter, so real text is stored verbatim and equality (filters, unique
  ids) still holds, because the escape is applied to parameters too.
- **Times** are ``timestamptz`` columns; remem keeps naive UTC datetimes. They travel in
  binary (microseconds since 2000-01-01 UTC), which involves no session time zone.
- **JSON** is ``jsonb``, which keeps numbers as ``numeric``: ``1.5e300`` would come back
  as 150 followed by 298 zeros, an int. Floats are therefore written positionally with a
  decimal point (numeric keeps the scale, so they read back as the same float); strings
  are escaped as above (jsonb rejects ``\\u0000``).
- **Vectors** use pgvector's binary format, registered per store (the type's oid is per
  database) by ``register_vectors``.

Results must be fetched in binary (``binary=True``) for the time and vector loaders.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from pgvector import Vector
from pgvector.psycopg.vector import VectorBinaryDumper
from psycopg.abc import Buffer
from psycopg.adapt import AdaptersMap, Dumper, Loader
from psycopg.pq import Format
from psycopg.types.datetime import TimestamptzLoader
from psycopg.types.json import set_json_dumps, set_json_loads
from psycopg.types.string import StrBinaryDumper, StrDumper, StrDumperUnknown

from remem.util import to_naive_utc

NUL, ESC = "\x00", "\uffff"
_ESC_BYTES = ESC.encode()
_UNESCAPE = re.compile("\uffff(.)", re.DOTALL)
_PG_EPOCH = datetime(2000, 1, 1)
_MICROSECOND = timedelta(microseconds=1)
_INT8 = struct.Struct(">q")
TIMESTAMPTZ_OID = 1184
_encode_string = json.encoder.encode_basestring  # JSON string syntax, ensure_ascii=False


def escape(text: str) -> str:
    """``text`` as PostgreSQL can store it (see the module docstring)."""
    if NUL not in text and ESC not in text:
        return text
    return text.replace(ESC, ESC + ESC).replace(NUL, ESC + "0")


def unescape(text: str) -> str:
    """Inverse of ``escape``."""
    if ESC not in text:
        return text
    return _UNESCAPE.sub(lambda m: NUL if m[1] == "0" else m[1], text)


# -- text ----------------------------------------------------------------------------------


class _TextUnknown(StrDumperUnknown):
    def dump(self, obj: str) -> Buffer | None:
        return super().dump(escape(obj))


class _Text(StrDumper):
    def dump(self, obj: str) -> Buffer | None:
        return super().dump(escape(obj))


class _TextBinary(StrBinaryDumper):
    def dump(self, obj: str) -> Buffer | None:
        return super().dump(escape(obj))


class _TextLoader(Loader):
    def load(self, data: Buffer) -> str:
        return unescape(str(data, "utf-8"))


class _TextBinaryLoader(_TextLoader):
    format = Format.BINARY


# -- times ---------------------------------------------------------------------------------


class _UtcDumper(Dumper):
    """A datetime as ``timestamptz``: naive ones are UTC, aware ones are converted."""

    format = Format.BINARY
    oid = TIMESTAMPTZ_OID

    def dump(self, obj: datetime) -> Buffer | None:
        return _INT8.pack((to_naive_utc(obj) - _PG_EPOCH) // _MICROSECOND)


class _UtcLoader(Loader):
    """A ``timestamptz`` as a naive UTC datetime."""

    format = Format.BINARY

    def load(self, data: Buffer) -> datetime:
        return _PG_EPOCH + timedelta(microseconds=_INT8.unpack(data)[0])


class _UtcTextLoader(TimestamptzLoader):
    """The same for a result fetched as text (in the session's time zone)."""

    def load(self, data: Buffer) -> datetime:
        return to_naive_utc(super().load(data))


# -- JSON ----------------------------------------------------------------------------------


def dumps(value: Any) -> str:
    """JSON text jsonb keeps exactly (see the module docstring); like ``json.dumps``
    with ``allow_nan=False`` otherwise."""
    out: list[str] = []
    _write(value, out)
    return "".join(out)


def _write(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(_encode_string(escape(value)))
    elif value is None or isinstance(value, bool):
        out.append("null" if value is None else "true" if value else "false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(_number(value))
    elif isinstance(value, Mapping):
        out.append("{")
        for n, (key, item) in enumerate(value.items()):
            out.append(("," if n else "") + _encode_string(escape(_key(key))) + ":")
            _write(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for n, item in enumerate(value):
            if n:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _number(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"Out of range float values are not JSON compliant: {value!r}")
    text = float.__repr__(value)
    if "e" in text:
        text = format(Decimal(text), "f")
    return text if "." in text else text + ".0"


def _key(key: Any) -> str:
    """An object key as ``json.dumps`` writes it."""
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool):
        return "null" if key is None else "true" if key else "false"
    if isinstance(key, int | float):
        return json.dumps(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def loads(data: bytes | bytearray | str) -> Any:
    """Inverse of ``dumps``."""
    value = json.loads(data)
    marked = ESC in data if isinstance(data, str) else _ESC_BYTES in data
    return _unescaped(value) if marked else value


def _unescaped(value: Any) -> Any:
    if isinstance(value, str):
        return unescape(value)
    if isinstance(value, list):
        return [_unescaped(v) for v in value]
    if isinstance(value, dict):
        return {unescape(k): _unescaped(v) for k, v in value.items()}
    return value


# -- vectors -------------------------------------------------------------------------------


class _VectorLoader(Loader):
    """A pgvector ``vector`` as a float32 numpy array."""

    format = Format.BINARY

    def load(self, data: Buffer) -> npt.NDArray[np.float32]:
        return Vector.from_binary(bytes(data)).to_numpy()


def register_vectors(adapters: AdaptersMap, oid: int) -> None:
    """Send numpy arrays as pgvector ``vector`` (of type ``oid`` in this database), and
    read that type back as numpy arrays."""

    class VectorDumper(VectorBinaryDumper):
        pass

    VectorDumper.oid = oid
    adapters.register_dumper(np.ndarray, VectorDumper)
    adapters.register_loader(oid, _VectorLoader)


def adapters() -> AdaptersMap:
    """psycopg's default adapters with remem's text, time and JSON codecs (vectors are
    added per store with ``register_vectors``)."""
    found = AdaptersMap(psycopg.adapters)
    for dumper in (_TextBinary, _Text, _TextUnknown):  # the last is the default for str
        found.register_dumper(str, dumper)
    found.register_loader("text", _TextLoader)
    found.register_loader("text", _TextBinaryLoader)
    found.register_dumper(datetime, _UtcDumper)
    found.register_loader("timestamptz", _UtcTextLoader)
    found.register_loader("timestamptz", _UtcLoader)
    set_json_dumps(dumps, found)
    set_json_loads(loads, found)
    return found
