# Copyright 2025 SGLang Team
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""LFM2-MoE (Liquid Foundation Model 2 - Mixture of Experts) configuration

Note: HF transformers has Lfm2MoeConfig in v5.0.0rc2 (unreleased).
Once released, we could inherit from it like Lfm2Config does with HFLfm2Config.
For now, we define a standalone config to support the model immediately.
"""


from transformers import CONFIG_MAPPING
from transformers.configuration_utils import PretrainedConfig



class Lfm2MoeConfig(PretrainedConfig):
    """
    Configuration for LFM2-MoE models (e.g., LiquidAI/LFM2-8B-A1B).

    LFM2-MoE is a hybrid architecture with:
    - Attention layers and ShortConv layers (like dense LFM2)
    - MoE (Mixture of Experts) FFN layers with sigmoid routing

    Key MoE specifics:
    - First `num_dense_layers` use dense MLP, rest use MoE
    - Sigmoid routing (not softmax) with expert_bias for load balancing
    - expert_bias is fp32 for numerical stability
    """

    model_type = "lfm2_moe"
    keys_to_ignore_at_inference = ["past_key_values"]

# Register with transformers CONFIG_MAPPING so AutoConfig.from_pretrained()
# can instantiate our config class when loading models with model_type="lfm2_moe"
try:
    CONFIG_MAPPING.register("lfm2_moe", Lfm2MoeConfig)
except Exception:
    # Already registered or registration failed - use direct assignment
    CONFIG_MAPPING._extra_content["lfm2_moe"] = Lfm2MoeConfig
