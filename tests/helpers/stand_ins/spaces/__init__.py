"""A stand-in for Hugging Face's `spaces` package as it behaves on a ZeroGPU Space.

Only `spaces.GPU(task=None, *, duration=None, size=None)` is provided. Like the real
one on ZeroGPU, a decorated call's arguments, and each value it yields or returns,
cross a process boundary by pickling; here they are pickled and unpickled in the same
process, so whatever could not cross fails here too. Every call is appended as a JSON
line (function name, the duration asked for, size) to the file named by
SPACES_STAND_IN_LOG, for the tests to read.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import pickle


def _across(value):
    return pickle.loads(pickle.dumps(value))


def _record(task, duration, size, args, kwargs) -> None:
    seconds = duration(*args, **kwargs) if callable(duration) else duration
    path = os.environ.get("SPACES_STAND_IN_LOG")
    if path:
        with open(path, "a") as log:
            log.write(json.dumps({"function": task.__name__, "duration": seconds, "size": size}) + "\n")


def GPU(task=None, *, duration=None, size=None):
    if task is None:
        return functools.partial(GPU, duration=duration, size=size)

    if inspect.isgeneratorfunction(task):
        @functools.wraps(task)
        def generator(*args, **kwargs):
            args, kwargs = _across((args, kwargs))
            _record(task, duration, size, args, kwargs)
            for item in task(*args, **kwargs):
                yield _across(item)
        return generator

    @functools.wraps(task)
    def regular(*args, **kwargs):
        args, kwargs = _across((args, kwargs))
        _record(task, duration, size, args, kwargs)
        return _across(task(*args, **kwargs))
    return regular
