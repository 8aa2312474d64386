# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# Adapted from https://github.com/vllm-project/vllm/blob/v0.10.0/vllm/compilation/fx_utils.py


from torch import fx


def is_func(node: fx.Node, target) -> bool:
    return node.op == "call_function" and node.target == target


# Returns the first specified node with the given op (if it exists)
# Returns the first specified node with the given op
# Returns the first auto_functionalized node with the given op (if it exists)
# Returns the first auto_functionalized node with the given op
# Returns the getitem node that extracts the idx-th element from node
# (if it exists)
# Returns the getitem node that extracts the idx-th element from node
# An auto-functionalization-aware utility for finding nodes with a specific op
# Asserts that the node only has one user and returns it
# Even if a node has only 1 user, it might share storage with another node,
# which might need to be taken into account.
