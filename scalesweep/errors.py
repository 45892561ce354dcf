"""The one exception type for user mistakes.

Anything a user can get wrong (a bad range, an unknown law, a malformed file, an unwritable path) raises
:class:`ScalesweepError` with a one-line message. The CLI turns it into ``Error: <message>`` on stderr and
a non-zero exit, never a traceback. Programming errors stay ordinary exceptions.
"""


class ScalesweepError(ValueError):
    """Invalid user input: the message is one line and says what to change."""


class UnknownArgument(ScalesweepError, TypeError):
    """A keyword argument a function does not take (a ``TypeError`` too, as Python's own would be)."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the program is, so that it unwinds like Ctrl-C: temporary files are
    removed and older outputs kept. ``signum`` gives the exit status 128 + signum."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
