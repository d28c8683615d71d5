"""`warm_start: {study: NAME, storage: URL}`: an earlier study whose finished trials seed the
sampler. `storage` defaults to this study's own. Checked here for shape only (a name, a URL
with a driver); whether the study is there is asked when the run starts, before anything is
written (`hpo.backends.warm_start`), since validation opens no database.
"""

from __future__ import annotations

from hpo.spec import WarmStartSpec
from hpo.study.keys import study_name
from hpo.study.problems import Problems
from hpo.study.reader import Reader
from hpo.study.sections.storage import checked_storage_url

WARM_START_KEYS = ("study", "storage")


def read_warm_start(reader: Reader, own_name: str, own_storage: str) -> WarmStartSpec | None:
    raw = reader.raw.get("warm_start")
    if raw is None:
        return None
    section = reader.as_mapping(raw, "warm_start")
    if not section:
        if isinstance(raw, dict):
            reader.problems.add("warm_start", "empty; expected {study: NAME, storage: URL}")
        return None
    problems = reader.problems
    problems.unknown_keys(section, WARM_START_KEYS, "warm_start")
    # study_name reports under `name`; here the key is warm_start.study.
    name_problems = Problems()
    name = study_name(section.get("study"), name_problems)
    for line in name_problems.lines:
        problems.add("warm_start.study", line.split(": ", 1)[1].replace("name: ", "study: "))
    storage_raw = section.get("storage")
    if storage_raw is None:
        storage = own_storage
    elif not isinstance(storage_raw, str) or not storage_raw.strip():
        problems.found("warm_start.storage", storage_raw, "a database URL, e.g. sqlite:///old.db")
        return None
    else:
        storage = checked_storage_url(storage_raw, "warm_start.storage", problems, workers=1)
    if not name:
        return None
    if name == own_name and storage == own_storage:
        problems.add(
            "warm_start.study",
            f"names this study itself ({name!r} in the same storage); expected an earlier study",
        )
        return None
    return WarmStartSpec(study=name, storage=storage)
