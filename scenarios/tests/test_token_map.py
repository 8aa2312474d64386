"""The committed hot-token map is what scenarios/token_map.py writes, in torch's legacy layout."""

import io
import pickle

from scenarios.token_map import HOT_TOKENS, MAGIC_NUMBER, PROTOCOL_VERSION, TOKEN_MAP, token_map_bytes


def test_the_committed_token_map_is_the_generated_one():
    assert TOKEN_MAP.read_bytes() == token_map_bytes(list(range(HOT_TOKENS))), "run `python -m scenarios.token_map`"


def test_the_token_map_reads_back_as_torch_legacy_load_reads_it():
    """torch's _legacy_load: magic number, protocol version, system info, the object, storage keys."""
    stream = io.BytesIO(token_map_bytes([5, 7, 11]))
    magic, protocol, sys_info, obj, keys = (pickle.load(stream) for _ in range(5))
    assert (magic, protocol, obj, keys) == (MAGIC_NUMBER, PROTOCOL_VERSION, [5, 7, 11], [])
    assert sys_info["little_endian"] and stream.read() == b""
