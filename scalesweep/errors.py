"""The one exception type for user mistakes.

Anything a user can get wrong (a bad range, an unknown law, a malformed file, an unwritable path) raises
:class:`ScalesweepError` with a one-line message. The CLI turns it into ``Error: <message>`` on stderr and
a non-zero exit, never a traceback. Programming errors stay ordinary exceptions.
"""


class ScalesweepError(ValueError):
    """Invalid user input: the message is one line and says what to change."""
