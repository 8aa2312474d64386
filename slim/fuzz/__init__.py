"""A seeded differential request fuzzer: the same random requests to upstream and to the slimmed tree.

generate (seed -> specs), run (specs -> rows against one server), compare (two runs -> problems),
drive (serve a scenario on each tree, run, compare, write the report)."""
