"""Reading the files an operator writes (campaigns.yaml, templates) as UTF-8 text, with a
located error when they are not: a file saved as Latin-1 or Windows-1252 is the usual
case, and the person needs to know which file and where."""

from __future__ import annotations

from pathlib import Path

from dripper.errors import ConfigError, Location, Problem


def _not_utf8(file: str, exc: UnicodeDecodeError) -> Problem:
    data, start = bytes(exc.object), exc.start  # after a byte order mark, if there was one
    line_start = data.rfind(b"\n", 0, start) + 1
    line = data.count(b"\n", 0, start) + 1
    column = len(data[line_start:start].decode("utf-8")) + 1  # in characters, as YAML and Jinja count
    byte = data[start : start + 1]
    guess = byte.decode("cp1252", errors="replace")
    looks = f" (as Windows-1252 or Latin-1 it would be {guess!r})" if guess.isprintable() and guess != "\ufffd" else ""
    return Problem(
        Location(file, line, column),
        f"not UTF-8 text: byte 0x{byte.hex().upper()} here is not UTF-8{looks}; save the file as UTF-8 "
        "(in the editor's Save As, choose the UTF-8 encoding) and run dripper check",
    )


def read_utf8(path: Path, file: str | None = None) -> str:
    """The file's text, newlines as `open()` reads them; ConfigError at the first byte
    that is not UTF-8, or when the file cannot be read. FileNotFoundError is left to the
    caller, which knows how to say what is missing."""
    shown = file or str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:  # a directory, no permission, an I/O error
        raise ConfigError([Problem(Location(shown, 1, 1), f"cannot read this file: {exc.strerror or exc}")]) from None
    try:
        text = data.decode("utf-8-sig")  # Notepad's "UTF-8" starts with a byte order mark: not part of the text
    except UnicodeDecodeError as exc:
        raise ConfigError([_not_utf8(shown, exc)]) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")  # universal newlines, as read_text() gave


__all__ = ["read_utf8"]
