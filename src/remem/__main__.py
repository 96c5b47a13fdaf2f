"""``python -m remem``: the ``remem`` command."""

from remem.cli.main import main

main()
