"""The user-error convention of hf_vq.

Library code raises :class:`UsageError` (or a plain ``ValueError`` / ``FileNotFoundError``)
for a mistake the user can fix: a missing file, a bad option, an unreachable Hub. The
message names the problem and the fix. The ``hf-vq`` command prints such errors as one
line (``hf-vq: error: ...``) and exits with status 2; ``--debug`` shows the traceback.
Anything else is a bug and keeps its traceback.
"""


class UsageError(ValueError):
    """A mistake in what the user asked for; the message says what to do instead."""


class HubUnreachableError(UsageError, ConnectionError):
    """The Hugging Face Hub could not be reached (no network, proxy, offline mode)."""


def network_errors() -> tuple:
    """The exception types that mean "the Hub could not be reached" for the installed HTTP clients."""
    errors = [ConnectionError, TimeoutError]
    for module_name, attribute in (("httpx2", "TransportError"), ("httpx", "TransportError"),
                                   ("requests", "ConnectionError"), ("requests", "Timeout"),
                                   ("huggingface_hub.errors", "OfflineModeIsEnabled")):
        try:
            module = __import__(module_name, fromlist=[attribute])
        except ImportError:
            continue
        error = getattr(module, attribute, None)
        if isinstance(error, type):
            errors.append(error)
    return tuple(errors)


__all__ = ["HubUnreachableError", "UsageError", "network_errors"]
