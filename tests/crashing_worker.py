"""A stand-in for ``prepare_clip`` whose worker process dies on the videos named in the
``TRIBERT_TEST_CRASH`` environment variable, as a decoder's segfault would; imported by the
worker processes of a test's ``prepare`` (spawn), not collected as tests."""

import os
import signal

from tribert.data.prepare import prepare_clip as real_prepare_clip


def prepare_clip(entry, *args, **kwargs):
    if entry.id in os.environ.get("TRIBERT_TEST_CRASH", "").split(","):
        os.kill(os.getpid(), signal.SIGKILL)
    return real_prepare_clip(entry, *args, **kwargs)
