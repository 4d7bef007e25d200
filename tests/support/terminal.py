"""A full-screen CLI (Codex's TUI) run in a pseudo-terminal, as a user at a terminal runs it: the test reads what it
draws, waits for words on its screen, and types keys.

    with Terminal([codex], env, cwd) as tui:
        mark = tui.mark()
        tui.type("/usage")                               # keys, as typed
        tui.wait_for("view account usage", since=mark)  # words drawn since the mark, within a deadline

The terminal answers the questions a TUI asks at start-up (where the cursor is, which terminal this is, its colours)
as a terminal emulator does: without answers, crossterm gives up on the first after seconds and the TUI with it.
The process runs in a session of its own, the pseudo-terminal its controlling terminal; `close` asks it to quit
with the keys a user would (Ctrl-C, twice), then ends its whole process group and whatever still runs from its
`leftovers` directory (a background server in a session of its own), and it dies with the test run anyway.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import struct
import subprocess
import termios
import threading
from pathlib import Path

from tests.support.harness import die_with_parent
from tests.support.timing import PATIENCE, wait_until

ROWS, COLUMNS = 40, 120
# The questions a TUI asks its terminal, each with a terminal emulator's answer (an xterm with a dark background).
ANSWERS = {
    b"\x1b[6n": f"\x1b[{ROWS};1R".encode(),  # where is the cursor (crossterm's cursor::position)
    b"\x1b[c": b"\x1b[?62;22c",  # which terminal is this (asked after the keyboard-protocol question, `\x1b[?u`)
    b"\x1b]10;?": b"\x1b]10;rgb:ffff/ffff/ffff\x1b\\",  # the foreground colour
    b"\x1b]11;?": b"\x1b]11;rgb:0000/0000/0000\x1b\\",  # the background colour
}
QUESTIONS = re.compile(b"|".join(re.escape(q) for q in ANSWERS))
LONGEST = max(map(len, ANSWERS))
# What a screen's bytes hold besides its words: CSI and OSC sequences, and the other escapes.
ESCAPES = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]|[\x00-\x08\x0e-\x1f]")
CTRL_C = "\x03"
QUIT = 2.0  # seconds a TUI is given to quit after a Ctrl-C before it is pressed again


class Terminal:
    def __init__(self, command: list[str], env: dict[str, str], cwd: Path, leftovers: Path | None = None) -> None:
        self.command, self.env, self.cwd = command, {**env, "TERM": "xterm-256color"}, cwd
        self.leftovers = leftovers  # a directory whose programs still running after the TUI quit are its leftovers
        self.output = bytearray()  # everything the program wrote, escapes and all
        self._lock = threading.Lock()
        self._master = -1
        self._asked_up_to = 0  # where the next look for a question starts (a question may span two reads)
        self.process: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> Terminal:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def start(self) -> Terminal:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))

        def controlling_terminal() -> None:  # (runs in the child, after start_new_session's setsid)
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            die_with_parent()

        try:
            self.process = subprocess.Popen(self.command, cwd=self.cwd, env=self.env, stdin=slave, stdout=slave,
                                            stderr=slave, start_new_session=True, preexec_fn=controlling_terminal)
        finally:
            os.close(slave)
        self._master = master
        self._reader = threading.Thread(target=self._read, name="terminal-reader", daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except OSError:  # EIO: the program and all it started closed the terminal
                return
            if not chunk:
                return
            with self._lock:
                self.output += chunk
                asked = list(QUESTIONS.finditer(self.output, self._asked_up_to))
                ends = [q.end() for q in asked]
                self._asked_up_to = max([self._asked_up_to, len(self.output) - LONGEST + 1, *ends])
            for question in asked:
                self.write(ANSWERS[question.group()])

    def write(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            os.write(self._master, data)

    def type(self, keys: str) -> None:
        """Keys as a user types them (`\\r` is Enter, `\\x1b[B` the down arrow)."""
        self.write(keys.encode())

    def mark(self) -> int:
        """Where the output is now: `wait_for(..., since=mark)` looks only at what is drawn after it (the output keeps
        every frame, and an earlier one may hold the words already)."""
        with self._lock:
            return len(self.output)

    def screen(self, since: int = 0) -> str:
        """The words the program drew (since a `mark`), its escapes left out (cursor moves split a line's words:
        compare with `shows`, which ignores blanks)."""
        with self._lock:
            raw = bytes(self.output[since:])
        return ESCAPES.sub(b"", raw).decode("utf-8", "replace")

    def shows(self, words: str, since: int = 0) -> bool:
        return _blankless(words) in _blankless(self.screen(since))

    def wait_for(self, words: str, timeout: float = PATIENCE, since: int = 0) -> None:
        """Wait until the screen shows `words` (or the program ends without them: fail, saying what it drew)."""
        def drawn() -> bool:
            if self.shows(words, since):
                return True
            assert self.process is not None and self.process.poll() is None, \
                f"the program ended ({self.returncode}) without showing {words!r}"
            return False
        try:
            wait_until(drawn, timeout, what=f"the screen to show {words!r}")
        except AssertionError as e:
            raise AssertionError(f"{e}; it drew:\n{self.screen(since)[-3000:]}") from None

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def close(self, patience: float = PATIENCE) -> None:
        """Quit as a user does (Ctrl-C, which a TUI may want twice), then end what is left of its process group and
        whatever still runs from `leftovers`."""
        process = self.process
        if process is None:
            return
        for _ in range(3):
            if process.poll() is not None:
                break
            self.type(CTRL_C)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(QUIT)
        self._end(process, patience)
        if self._reader is not None:
            self._reader.join(patience)
        with contextlib.suppress(OSError):
            os.close(self._master)
        self.process = None

    def _end(self, process: subprocess.Popen, patience: float) -> None:
        """Its process group (the launcher's child may outlive the launcher) and what runs from `leftovers` (a
        background server started in a session of its own): asked to end, then killed."""
        def gone() -> bool:
            process.poll()  # (reaps the launcher: unreaped, it still counts in its group)
            return not _alive(process.pid) and not self.left_behind()

        for sig in (signal.SIGTERM, signal.SIGKILL):
            if gone():
                return
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, sig)
            for pid in self.left_behind():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            with contextlib.suppress(AssertionError):
                wait_until(gone, patience)

    def left_behind(self) -> list[int]:
        """The processes running a program from under `leftovers`."""
        if self.leftovers is None:
            return []
        root = str(self.leftovers) + os.sep
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace").startswith(root):
                        found.append(int(entry.name))
        return found


def _alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _blankless(text: str) -> str:
    return "".join(text.split())
