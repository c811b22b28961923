"""The one exception the troupe SDK raises for a failed call.

Every failure of a call to the scheduler, whether the scheduler refused it
(its reply's status code) or the transport failed (nothing listens at the
address, no reply in time), raises :class:`TroupeError`, so that a caller
catches one type and looks at ``.code`` to decide.  Arguments that are
wrong before any call is made raise ``ValueError`` or ``TypeError``.
"""

__all__ = ["TroupeError"]


class TroupeError(Exception):
    """A call to the scheduler failed.

    ``code`` is the name of the API's status code (proto/envelope.proto's
    ``Code``: ``"NOT_FOUND"``, ``"PERMISSION_DENIED"``, ``"UNAVAILABLE"``,
    ...); ``message`` is one line for a person; ``addr`` is the scheduler's
    address when the failure concerns it, else None.
    """

    def __init__(self, code, message, addr=None):
        self.code = code
        self.message = message
        self.addr = addr
        super().__init__(f"{code}: {message}")

    def __reduce__(self):
        # Keeps the three fields across pickling (multiprocessing, ...).
        return (type(self), (self.code, self.message, self.addr))
