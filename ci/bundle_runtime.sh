# Sourced by ci/gpu_session.sh (needs MODE, DEPS): puts the third-party runtime at $DEPS.
# With .carry/bundle/ (`slim bundle`), verify/bench/serve-bench/faults run on the bundle: its pruned site
# goes to $DEPS, where the recordings saw the runtime (same mapped paths, same JIT cache keys), and its
# slimmed tree to /tmp/slim-tree; no deps.tar.xz is needed. record and both always use the full
# .carry/deps.tar.xz: recording on a pruned runtime could not see what the pruning removed.
BUNDLE=""
case "$MODE" in record|both) ;; *) ls .carry/bundle/bundle.tar.xz.* >/dev/null 2>&1 && BUNDLE=/opt/rt/bundle ;; esac
if [ "${AGAIN:-}" = 1 ] && [ -d "$DEPS" ]; then :  # a second gpu_session.sh mode in this device call
elif [ -n "$BUNDLE" ]; then
  rm -rf "$DEPS" /tmp/slim-tree "$BUNDLE"  # a machine still warm from the previous call
  sh .carry/bundle/unpack.sh "$BUNDLE" && mv "$BUNDLE/site" "$DEPS" && mv "$BUNDLE/tree" /tmp/slim-tree || return 1
  echo "runtime: slim bundle, site $(du -sh "$DEPS" | cut -f1), tree /tmp/slim-tree"
else
  rm -rf "$DEPS" && tar -xJf .carry/deps.tar.xz -C /opt/rt/deps || return 1
fi
# Named in every verify report: which third-party runtime served the slimmed tree.
if [ -n "$BUNDLE" ]; then export SLIM_RUNTIME="slim bundle, SHA256SUMS $(sha256sum .carry/bundle/SHA256SUMS | cut -c1-16)"
else export SLIM_RUNTIME="full third-party runtime, deps.tar.xz $(sha256sum .carry/deps.tar.xz | cut -c1-16)"; fi
