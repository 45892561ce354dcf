"""``python -m scalesweep`` runs the command line."""

from .cli import main

main()
