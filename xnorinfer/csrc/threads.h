/* The thread count every kernel uses, set from Python (xnorinfer.set_num_threads). */
#ifndef XNORINFER_THREADS_H
#define XNORINFER_THREADS_H

#ifdef _OPENMP
#include <omp.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* 1 if the extension was built with OpenMP. */
int xi_openmp_enabled(void);
/* Threads a kernel uses: the count set_num_threads pinned, else omp_get_max_threads() read on
 * each call (so OMP_NUM_THREADS, omp_set_num_threads and threadpoolctl take effect); 1 without
 * OpenMP and in a forked child. */
int xi_get_num_threads(void);
/* n >= 1 pins the count; n <= 0 unpins it (follow OpenMP again). */
void xi_set_num_threads(int n);
/* The pinned count, or 0 when unpinned. */
int xi_get_thread_pin(void);
/* Called in a forked child (os.register_at_fork): from then on xi_get_num_threads() is 1. */
void xi_after_fork_in_child(void);
int xi_is_forked_child(void);
/* Called by the binary convolutions' threads in each parallel region: thread 0 records the team's
 * size, which xi_last_team_size() reports (tests check the threads a kernel really ran on). */
void xi_note_team(void);
int xi_last_team_size(void);
/* Index of the calling thread inside a parallel region (0 outside one). */
static inline int xi_thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

#ifdef __cplusplus
}
#endif
#endif
