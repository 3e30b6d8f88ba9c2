/* ThreadSanitizer's suppressions for this program (built into TSan builds
 * only). liburcu, under libfrt's deferred reclamation, synchronizes in
 * inline assembly that TSan cannot see. libfrt states to TSan every
 * happens-before it relies on, and keeps liburcu's own internals (its
 * call_rcu thread, its barrier) out of reports with this same hook. But
 * TSan reads the hook from the executable: in a program linked with the
 * shared libfrt, the library's copy is never called, so the program
 * repeats it. It names liburcu only: races in frt or in this program are
 * still reported. */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
    return "called_from_lib:liburcu-qsbr.so.8\n"
           "called_from_lib:liburcu-common.so.8\n"
           "called_from_lib:liburcu-cds.so.8\n";
}
