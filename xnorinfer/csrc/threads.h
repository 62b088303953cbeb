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
/* Threads a kernel uses: starts at the OpenMP default, which honours OMP_NUM_THREADS. */
int xi_get_num_threads(void);
void xi_set_num_threads(int n);
/* Called in a forked child (os.register_at_fork): from then on xi_get_num_threads() is 1. */
void xi_after_fork_in_child(void);
int xi_is_forked_child(void);
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
