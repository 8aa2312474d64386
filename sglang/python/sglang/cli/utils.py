import logging
import os
import subprocess
from functools import lru_cache



logger = logging.getLogger(__name__)


def get_model_path(extra_argv):
    # Find the model_path argument
    raise NotImplementedError('slim removed the body of get_model_path: it never ran in any recording (see sglang/REMOVED.md)')


@lru_cache(maxsize=1)
def get_git_commit_hash() -> str:
    try:
        commit_hash = os.environ.get("SGLANG_GIT_COMMIT")
        if not commit_hash:
            commit_hash = (
                subprocess.check_output(
                    ["git", "rev-parse", "HEAD"], stderr=subprocess.DEVNULL
                )
                .strip()
                .decode("utf-8")
            )
        _CACHED_COMMIT_HASH = commit_hash
        return commit_hash
    except (subprocess.CalledProcessError, FileNotFoundError):
        _CACHED_COMMIT_HASH = "N/A"
        return "N/A"
