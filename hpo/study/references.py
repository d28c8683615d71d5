"""What a study points at outside itself: a local path or hub id, or a user's factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpo.errors import HpoError
from hpo.study.guarded_calls import no_bytecode, one_line
from hpo.study.reader import Reader


def read_local_or_hub(reader: Reader, value: Any, path: str, what: str) -> str | None:
    """A local path (must exist) or a hub id such as `org/name` (the network decides)."""
    if value is None:
        return None
    text = reader.text(value, path, f"a local path or a hub id of {what}")
    if text is None:
        return None
    local = Path(text).expanduser()
    if local.exists():
        return str(local.absolute())
    looks_local = text.startswith(("/", ".", "~")) or "\\" in text or text.count("/") > 1
    if looks_local:
        reader.problems.add(
            path, f"found {text!r}, but no such file or directory ({local.absolute()})"
        )
    return text


def read_factory(reader: Reader, value: Any, path: str) -> str | None:
    """A 'package.module:function' that imports (from the current directory too) and exists."""
    if value is None:
        return None
    text = reader.text(value, path, "'package.module:function'")
    if text is None:
        return None
    from hpo.data.factory import load_factory  # puts the current directory on sys.path itself

    try:
        with no_bytecode():
            load_factory(text, path)
    except HpoError as error:
        reader.problems.lines.append(str(error))
    except Exception as error:  # the user's module raised while importing
        reader.problems.add(path, f"importing {text!r} raised {one_line(error)}")
    return text
