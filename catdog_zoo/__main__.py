"""``python -m catdog_zoo`` is the ``catdog-zoo`` command."""

from .cli import main

main()
