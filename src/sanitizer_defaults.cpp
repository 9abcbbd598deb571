// The sanitizers' defaults, compiled into every binary of a MOETRAIN_SANITIZE build (so mpirun's
// ranks and the shell tests need no environment): stop at the first report, and leave out the
// leaks of the libraries below. Open MPI's components keep what they allocate until the process
// ends; they are plugins built without frame pointers, so the fast unwinder's stack of such a
// block ends in the plugin: kept loaded (dlclose below does nothing), its module's path is what
// the suppressions match. (The slow unwinder reached MPI's own frames instead, at 10x the time.)
#include <dlfcn.h>

extern "C" const char* __asan_default_options() {
  return "detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1";
}

extern "C" const char* __ubsan_default_options() {
  return "print_stacktrace=1:halt_on_error=1";
}

extern "C" const char* __lsan_default_options() {
  return "print_suppressions=0";
}

// A library unloaded before the leak check leaves its blocks' frames in no module.
extern "C" int dlclose(void*) {
  return 0;
}

extern "C" const char* __lsan_default_suppressions() {
  return "leak:libmpi.so\n"
         "leak:libopen-pal.so\n"
         "leak:libopen-rte.so\n"
         "leak:/openmpi/lib/\n"  // the components (mca_*.so)
         "leak:libevent\n"       // its progress thread's plugins (PMIx)
         "leak:libpmix.so\n"
         "leak:/pmix2/lib/\n"
         "leak:libhwloc.so\n"
         // Open PAL's asprintf: the fast unwinder stops in libc (moetrain calls no asprintf).
         "leak:vasprintf\n"
         // HDF5 1.10 loses a block on the error path of a damaged file (fuzz_tokens); the
         // handles moetrain holds stay reachable through HDF5's tables, so none of ours hides here.
         "leak:libhdf5_serial.so\n";
}
