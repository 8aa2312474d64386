"""The hot-token map of scenario r1_fp8_tp1_mtp_presharded (--speculative-token-map): a torch file
holding the token ids the draft model may propose, written without torch.

Upstream reads it with `torch.load(path, weights_only=True)` (speculative/spec_utils.py
load_token_map) and slices the MTP draft's LM head to those ids (eagle_worker_v2.py init_lm_head).
torch.load still reads its legacy (non-zip) format under weights_only: five pickles in a row, the
magic number, the protocol version, the writer's system info, the object, then the storage keys
(none for a list of ints). `python -m scenarios.token_map` rewrites the committed file.
"""

from __future__ import annotations

import pickle
from pathlib import Path

TOKEN_MAP = Path(__file__).parent / "configs" / "hot_tokens.pt"
HOT_TOKENS = 2048  # the lowest ids: the tiny tokenizer's special tokens and most of its merges
# torch/serialization.py: MAGIC_NUMBER, PROTOCOL_VERSION and the system info torch.save writes.
MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
SYS_INFO = {"protocol_version": PROTOCOL_VERSION, "little_endian": True,
            "type_sizes": {"short": 2, "int": 4, "long": 8}}


def token_map_bytes(token_ids: list[int]) -> bytes:
    """The legacy torch serialization of a list of ints, as torch.save(_use_new_zipfile_serialization=False)."""
    parts = (MAGIC_NUMBER, PROTOCOL_VERSION, SYS_INFO, token_ids, [])
    return b"".join(pickle.dumps(part, protocol=2) for part in parts)


def main() -> None:
    TOKEN_MAP.write_bytes(token_map_bytes(list(range(HOT_TOKENS))))


if __name__ == "__main__":
    main()
