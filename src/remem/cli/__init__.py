"""The ``remem`` command line: a thin client of ``remem.Memory`` and ``remem.bench``."""
