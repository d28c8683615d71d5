"""`push_best_to_hub`: the Hub repo that receives the best trial's model at the end of `hpo run`.

Only the repo id is in the study file; the token comes from where huggingface_hub looks for it
(HF_TOKEN or `hf auth login`), never from a file that is shared and committed.
"""

from __future__ import annotations

import re

from hpo.study.reader import Reader

# The Hub's repo id rule (huggingface_hub.utils.validate_repo_id), checked without importing it.
_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
REPO_ID = re.compile(rf"^(?:{_PART}/)?{_PART}$")
REPO_ID_HELP = "a Hub repo id such as my-user/my-model (letters, digits, - _ .; up to 96)"


def read_push_best_to_hub(reader: Reader) -> str | None:
    value = reader.raw.get("push_best_to_hub")
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or len(value) > 96
        or not REPO_ID.match(value)
        or "--" in value
        or ".." in value
    ):
        reader.problems.found("push_best_to_hub", value, REPO_ID_HELP)
        return None
    return value
