"""The result channel of a child: one socket pair, signed with a key drawn after the fork.

After the fork the parent draws a fresh random key and sends it down the child's socket;
the child's reporting code reads it only after the test has run and signs its result
(HMAC-SHA256) with it. Code under test that forges a result and leaves with
``os._exit(0)`` has no key: the parent rejects the result as forged. Code that reads
the key first leaves the harness without one: rejected as tampered.

A socket, not a file or a pipe: other children cannot reach it (inherited descriptors
are released, and a socket cannot be reopened through ``/proc/PID/fd``), so one learner's
code cannot forge or spoil another's result. Code that imitates this exact protocol
cannot be stopped in-process; see docs/authoring.md, "What the sandbox cannot stop".
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
from dataclasses import dataclass, field

KEY_BYTES = 32
MAX_RESULT_BYTES = 16 * 1024 * 1024


class ForgedResult(ValueError):
    """A result the child's own reporting code did not send."""


def pair() -> tuple[socket.socket, socket.socket]:
    """The parent's end and the child's end of a new channel."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)


def new_key() -> bytes:
    """A fresh signing key (drawn in the parent, after the fork)."""
    return os.urandom(KEY_BYTES)


def _mac(key: bytes, body: bytes) -> str:
    return hmac.new(key, body, hashlib.sha256).hexdigest()


KEY_WAIT_SECONDS = 5.0


def read_key(end: socket.socket) -> bytes | None:
    """In the child, after the test: the key the parent sent (None if someone took it).

    The parent sends the key right after the fork, but a fast child on a busy machine can
    get here first: wait for it (bounded; a key taken by the code under test never comes).
    """
    end.settimeout(KEY_WAIT_SECONDS)
    key = b""
    try:
        while len(key) < KEY_BYTES:
            chunk = end.recv(KEY_BYTES - len(key))
            if not chunk:
                break
            key += chunk
    except OSError:  # timeout included
        return None
    return key if len(key) == KEY_BYTES else None


def send(end: socket.socket, key: bytes | None, payload: object) -> None:
    """In the child: send the signed result (unsigned when the key is gone), then close."""
    body = json.dumps(payload).encode()
    envelope = json.dumps({"body": body.decode(), "mac": _mac(key, body) if key else None})
    end.setblocking(True)
    end.sendall(envelope.encode())
    end.shutdown(socket.SHUT_WR)


@dataclass
class Inbox:
    """The parent's end of one channel, collecting what the child sends."""

    end: socket.socket
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0

    def fileno(self) -> int:
        """For select()."""
        return self.end.fileno()

    def pull(self) -> None:
        """Read whatever is there now, without blocking (a flood beyond the cap is dropped)."""
        while True:
            try:
                chunk = self.end.recv(1 << 16)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if not chunk:
                return
            if self.size <= MAX_RESULT_BYTES:
                self.chunks.append(chunk)
            self.size += len(chunk)

    def close(self) -> None:
        """Release the parent's end."""
        self.end.close()


@dataclass(frozen=True)
class Received:
    """What the parent found in a child's channel."""

    payload: object


def receive(inbox: Inbox, key: bytes) -> Received | None:
    """In the parent, after the child ended: its verified payload; None when it sent nothing.

    Raises ForgedResult when the data is not what the child's reporting code sends.
    """
    inbox.pull()
    if not inbox.size:
        return None
    if inbox.size > MAX_RESULT_BYTES:
        raise ForgedResult(f"a result of {inbox.size} bytes")
    try:
        envelope = json.loads(b"".join(inbox.chunks))
        body = envelope["body"].encode()
        mac = envelope["mac"]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ForgedResult("a result in an unknown format") from None
    if mac is None:
        raise ForgedResult("a result signed without its key (the key was taken from it)")
    if not isinstance(mac, str) or not hmac.compare_digest(mac, _mac(key, body)):
        raise ForgedResult("a result with a wrong signature")
    return Received(json.loads(body))
