from sglang.srt.utils import is_hip

_is_hip = is_hip()


class DeepseekV3ForCausalLM:
    def __init__(self):
        self.layers = [lambda x: x + 1 for _ in range(2)]

    def forward(self, x):
        if _is_hip:
            return self._forward_hip(x)
        return sum(layer(x) for layer in self.layers)

    def _forward_hip(self, x):
        return x
