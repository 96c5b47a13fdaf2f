"""The one table of how each error is reported: complete, consistent, and what the CLI uses."""

from __future__ import annotations

import inspect

from remem import errors
from remem.errors import ERRORS, INTERNAL, INVALID_PARAMS, RememError, kind_of


def test_every_error_class_has_its_own_row() -> None:
    classes = {c for _, c in inspect.getmembers(errors, inspect.isclass)
               if issubclass(c, RememError)}  # fmt: skip
    assert classes == set(ERRORS)
    assert len({kind.code for kind in ERRORS.values()}) == len(ERRORS)  # codes are unique


def test_client_errors_are_4xx_and_invalid_params_the_rest_5xx_and_internal() -> None:
    for cls, kind in ERRORS.items():
        client = 400 <= kind.http_status < 500
        assert client == (kind.rpc_code == INVALID_PARAMS), cls
        assert client or (kind.http_status >= 500 and kind.rpc_code == INTERNAL), cls
        # a client error is the caller's to fix; so is a configuration error at the CLI
        assert not client or kind.exit_code in (2, 3), cls


def test_a_subclass_without_a_row_takes_its_base_class_row() -> None:
    class Special(errors.NotFoundError):
        pass

    assert kind_of(Special("x")) == ERRORS[errors.NotFoundError]
    assert kind_of(errors.MessageTooLargeError("x")).http_status == 413
