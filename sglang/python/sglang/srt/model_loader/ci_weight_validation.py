"""
CI-specific weight validation and cache cleanup utilities.

This module contains validation and cleanup logic that is ONLY used in CI environments.
These functions handle:
- Validating safetensors files for corruption
- Checking for missing shards in sharded models
- Cleaning up corrupted files (selective or full cache deletion)
- Automatic retry logic for corrupted downloads
- Validating config/tokenizer files completeness to enable offline mode

For regular users, weight_utils.py provides simple download functionality without
the overhead of validation and automatic cleanup. The CI-specific behavior is
gated by is_in_ci() checks in weight_utils.py.
"""

import logging
from typing import List, Optional, Tuple

import safetensors


logger = logging.getLogger(__name__)

# Validation marker version - increment when validation logic changes
# v2: Added trust_remote_code module validation (modeling_*.py must exist in snapshot)
# v3: Added remote file existence checks for hf_quant_config.json
# v5: Invalidate all previous markers to force fresh validation
VALIDATION_MARKER_VERSION = "5"


def _remote_file_exists(
    repo_id: str, filename: str, revision: Optional[str], allow_remote_check: bool
) -> Optional[bool]:
    raise NotImplementedError('slim removed the body of _remote_file_exists: it never ran in any recording (see sglang/REMOVED.md)')


def _check_index_files_exist(snapshot_dir: str) -> Tuple[bool, Optional[str]]:
    raise NotImplementedError('slim removed the body of _check_index_files_exist: it never ran in any recording (see sglang/REMOVED.md)')


def ci_validate_and_cleanup_local_snapshot(
    model_name_or_path: str,
    found_local_snapshot_dir: str,
    local_weight_files: List[str],
) -> bool:
    raise NotImplementedError('slim removed the body of ci_validate_and_cleanup_local_snapshot: it never ran in any recording (see sglang/REMOVED.md)')


def ci_download_with_validation_and_retry(
    model_name_or_path: str,
    allow_patterns: List[str],
    ignore_patterns,
    cache_dir: Optional[str],
    revision: Optional[str],
    max_retries: int = 3,
) -> str:
    raise NotImplementedError('slim removed the body of ci_download_with_validation_and_retry: it never ran in any recording (see sglang/REMOVED.md)')


