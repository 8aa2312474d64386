"""LPLB (LP-based Load Balancer) JIT kernels for expert parallelism."""
