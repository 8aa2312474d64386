"""A seeded differential request fuzzer: the same random requests to upstream and to the slimmed tree.

generate (seed -> specs), run (specs -> rows against one server), compare (two runs -> problems),
drive (serve a scenario on each tree, run, compare, write the report); with --kits, upstream's own kit
tests on each server as well: kit_selection (which, and why), kits + kit_runner (run them), kits_compare."""
