/* Per-thread scratch: each OS thread (a caller's, or one of an OpenMP team's) keeps a few buffers
 * that grow to the largest request and are reused by every later call, instead of a malloc and
 * free per kernel call. A buffer is freed when its thread exits (and at no other time). */
#ifndef XNORINFER_SCRATCH_H
#define XNORINFER_SCRATCH_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The slots of a thread: buffers one kernel call uses at the same time on the same thread. */
enum {
    XI_SCRATCH_TEAM = 0,   /* what a call's threads share, taken by the calling thread */
    XI_SCRATCH_THREAD = 1, /* one thread's own working memory */
    XI_SCRATCH_EXTRA = 2,  /* a second buffer of a thread's own */
    XI_SCRATCH_SLOTS = 3
};

/* At least `bytes` bytes (64-byte aligned) in slot `slot` of the calling thread, or NULL when out of
 * memory. The contents are undefined; the buffer stays valid until the same thread asks for that
 * slot again. Never free it. */
void *xi_scratch(int slot, size_t bytes);

/* Frees the calling thread's buffers now (tests, and threads that are about to idle long). */
void xi_scratch_release(void);

#ifdef __cplusplus
}
#endif
#endif
