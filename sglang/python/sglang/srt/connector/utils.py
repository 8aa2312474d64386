# SPDX-License-Identifier: Apache-2.0

from typing import Optional

from sglang.srt.connector import BaseConnector


def parse_model_name(url: str) -> str:
    raise NotImplementedError('slim removed the body of parse_model_name: it never ran in any recording (see sglang/REMOVED.md)')


def pull_files_from_db(
    connector: BaseConnector,
    model_name: str,
    allow_pattern: Optional[list[str]] = None,
    ignore_pattern: Optional[list[str]] = None,
) -> None:
    raise NotImplementedError('slim removed the body of pull_files_from_db: it never ran in any recording (see sglang/REMOVED.md)')
