"""``python -m scalesweep`` and the ``scalesweep`` console script: run the command line.

The command-line module is imported inside ``main`` so that Ctrl-C during start-up ends the process with
exit status 130 and no traceback.
"""

import os
import sys


def main():
    try:
        from . import storage
        from .cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("Aborted.\n")
        sys.stderr.flush()
        os._exit(130)
    storage.ONE_SHOT = True
    run()


if __name__ == "__main__":
    main()
