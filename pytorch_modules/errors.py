"""The recipe's error type and the way entry points report it.

A RecipeError is bad input or a state the user can fix: its message is a sentence that names the
file, line or utterance and what to do.  Entry points print it without a traceback; any other
exception is a bug and keeps its traceback.
"""
import sys


class RecipeError(Exception):
    """Bad input or state, explained for the user."""


def unwrap_worker_message(message: str) -> str:
    """The sentence of a RecipeError raised in a DataLoader worker process.

    The loader re-raises it in the main process with the worker's whole traceback as the
    message ("Caught RecipeError in DataLoader worker process 0. Original Traceback ...");
    the user needs only the last line's sentence.
    """
    if "Original Traceback" not in message:
        return message
    last = message.rstrip().splitlines()[-1]
    return last.split("RecipeError: ", 1)[-1]


def run_entry_point(main, prog: str) -> None:
    """Calls main(); a RecipeError becomes `prog: message` on stderr and exit status 1."""
    try:
        status = main()
    except RecipeError as e:
        print(f"{prog}: {unwrap_worker_message(str(e))}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(status or 0)
