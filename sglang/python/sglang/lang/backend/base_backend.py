
from sglang.lang.chat_template import get_chat_template


class BaseBackend:
    pass
