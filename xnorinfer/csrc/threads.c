#include "threads.h"

static int num_threads = 0; /* 0: not set yet */
/* Set in a child process made by fork(): libgomp's thread pool did not survive the fork, and a
 * parallel region there waits for threads that do not exist. Kernels then run on one thread. */
static int forked_child = 0;

int xi_openmp_enabled(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int xi_get_num_threads(void)
{
    if (forked_child)
        return 1;
    if (num_threads <= 0) {
#ifdef _OPENMP
        num_threads = omp_get_max_threads();
#else
        num_threads = 1;
#endif
    }
    return num_threads;
}

void xi_set_num_threads(int n)
{
#ifdef _OPENMP
    num_threads = n > 0 ? n : 1;
#else
    (void)n;
    num_threads = 1;
#endif
}

void xi_after_fork_in_child(void)
{
    forked_child = 1;
}

int xi_is_forked_child(void)
{
    return forked_child;
}
