// The sanitizers' defaults, compiled into every binary of a MOETRAIN_SANITIZE build (so mpirun's
// ranks and the shell tests need no environment): stop at the first report, and leave out the
// leaks of the libraries below. Open MPI's components keep what they allocate until the process
// ends; their plugins are unloaded by then and built without frame pointers: only the slow
// unwinder at each malloc reaches MPI's own frames, which the suppressions match.
extern "C" const char* __asan_default_options() {
  return "detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1:fast_unwind_on_malloc=0";
}

extern "C" const char* __ubsan_default_options() {
  return "print_stacktrace=1:halt_on_error=1";
}

extern "C" const char* __lsan_default_options() {
  return "print_suppressions=0";
}

extern "C" const char* __lsan_default_suppressions() {
  return "leak:libmpi.so\n"
         "leak:libopen-pal.so\n"
         "leak:libopen-rte.so\n"
         "leak:libevent_core\n"  // its progress thread's plugins (PMIx)
         "leak:libpmix.so\n"
         "leak:libhwloc.so\n"
         // HDF5 1.10 loses a block on the error path of a damaged file (fuzz_tokens); the
         // handles moetrain holds stay reachable through HDF5's tables, so none of ours hides here.
         "leak:libhdf5_serial.so\n";
}
