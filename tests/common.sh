# Sourced by the shell tests: a temporary folder removed on exit (a test with more to clean up
# sets its own EXIT trap after sourcing this), and the mpirun command for multi-rank runs
# (more ranks than cores need --oversubscribe; root needs --allow-run-as-root).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mpi=(mpirun --oversubscribe -x OMP_NUM_THREADS=1)
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
