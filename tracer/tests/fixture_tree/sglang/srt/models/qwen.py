class QwenForCausalLM:
    """Never imported: no registry names it."""
