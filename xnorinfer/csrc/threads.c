#include "threads.h"

/* set_num_threads's count, or 0: follow OpenMP's (omp_get_max_threads) on every call, so that
 * OMP_NUM_THREADS and threadpoolctl's threadpool_limits(user_api="openmp") take effect. */
static int pinned_threads = 0;
/* Set in a child process made by fork(): libgomp's thread pool did not survive the fork, and a
 * parallel region there waits for threads that do not exist. Kernels then run on one thread. */
static int forked_child = 0;
/* The size of the team of the last parallel region a binary convolution ran (1 without one). */
static int last_team = 0;

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
    if (pinned_threads > 0)
        return pinned_threads;
#ifdef _OPENMP
    const int n = omp_get_max_threads(); /* the calling thread's ICV: cheap, read on each call */
    return n > 0 ? n : 1;
#else
    return 1;
#endif
}

void xi_set_num_threads(int n)
{
#ifdef _OPENMP
    pinned_threads = n > 0 ? n : 0;
#else
    pinned_threads = n > 0 ? 1 : 0;
#endif
}

int xi_get_thread_pin(void)
{
    return pinned_threads;
}

void xi_after_fork_in_child(void)
{
    forked_child = 1;
}

int xi_is_forked_child(void)
{
    return forked_child;
}

void xi_note_team(void)
{
#ifdef _OPENMP
    if (omp_get_thread_num() == 0)
        last_team = omp_get_num_threads();
#else
    last_team = 1;
#endif
}

int xi_last_team_size(void)
{
    return last_team;
}
