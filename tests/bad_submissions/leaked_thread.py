"""Does the right thing, but importing it leaves a non-daemon thread running."""

import threading

from _reference import *  # noqa: F403

threading.Thread(target=threading.Event().wait, name="forgotten-worker").start()
