/* Per-ISA packers of one run of n channels into words_for(n) words, zero_to an xi_zero_to; each
 * returns the NaNs met. */
#ifndef XNORINFER_BITPACK_IMPL_H
#define XNORINFER_BITPACK_IMPL_H

#include <stdint.h>

#include "bitpack.h"

typedef int64_t xi_pack_run_kernel(const float *x, const float *bias, int n, int zero_to, uint64_t *out);
typedef xi_pack_run_kernel *xi_pack_run_fn;

/* BODY(x, bias, n, le, out) with le = whether zero packs as -1, a constant in each branch: a body
 * inlined with `le` known compiles to one compare per lane (`<` or `<=`), so the default mode's
 * loop is the same as with no mode at all. */
#define XI_PACK_BY_MODE(BODY, x, bias, n, zero_to, out)                                            \
    ((zero_to) == XI_ZERO_TO_MINUS_ONE ? BODY(x, bias, n, 1, out) : BODY(x, bias, n, 0, out))

#endif
