# SPDX-License-Identifier: Apache-2.0

import msgspec


EXA_API_BASE_URL = "https://api.exa.ai"
EXA_INTEGRATION_HEADER = "x-exa-integration"
EXA_INTEGRATION_NAME = "sglang"
EXA_DEFAULT_NUM_RESULTS = 10
EXA_DEFAULT_SEARCH_TYPE = "auto"
EXA_DEFAULT_HIGHLIGHTS = True

_SEARCH_TYPES = {"instant", "fast", "auto", "deep-lite", "deep", "deep-reasoning"}


class ExaSearchConfig(msgspec.Struct, frozen=True, kw_only=True):
    num_results: int = EXA_DEFAULT_NUM_RESULTS
    search_type: str = EXA_DEFAULT_SEARCH_TYPE
    include_highlights: bool = EXA_DEFAULT_HIGHLIGHTS

    @classmethod
    def from_env(cls) -> "ExaSearchConfig":
        # EnvField handles type parsing (int/bool) and falls back to its own
        # default on a parse error; here we only enforce the semantic bounds
        # that the generic descriptors cannot express.
        raise NotImplementedError('slim removed the body of ExaSearchConfig.from_env: it never ran in any recording (see sglang/REMOVED.md)')


class ExaClient:
    pass
