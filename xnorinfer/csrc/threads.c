#include "threads.h"

static int num_threads = 0; /* 0: not set yet */

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
