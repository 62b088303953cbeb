/* Per-ISA packers of one run of n channels into words_for(n) words; each returns the NaNs met. */
#ifndef XNORINFER_BITPACK_IMPL_H
#define XNORINFER_BITPACK_IMPL_H

#include <stdint.h>

typedef int64_t (*xi_pack_run_fn)(const float *x, const float *bias, int n, uint64_t *out);

int64_t xi_pack_run_scalar(const float *x, const float *bias, int n, uint64_t *out);
int64_t xi_pack_run_avx2(const float *x, const float *bias, int n, uint64_t *out);
int64_t xi_pack_run_avx512(const float *x, const float *bias, int n, uint64_t *out);

/* The packer of an instruction set (the scalar one where it has none). */
xi_pack_run_fn xi_pack_run_for(int isa);

#endif
