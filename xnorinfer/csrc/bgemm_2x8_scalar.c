/* Scalar micro-kernel, 2 rows x 8 channels (bgemm_scalar_impl.h), built twice on x86-64: portable,
 * and with the popcnt instruction for CPUs that have it (kernels.c picks by CPU). */
#include "bgemm.h"
#include "popcount.h"

#define XI_SCALAR_NAME xi_bgemm_2x8_scalar
#define XI_SCALAR_ATTR
#include "bgemm_scalar_impl.h"
#undef XI_SCALAR_NAME
#undef XI_SCALAR_ATTR

#ifdef XI_X86
#define XI_SCALAR_NAME xi_bgemm_2x8_scalar_popcnt
#define XI_SCALAR_ATTR XI_TARGET_POPCNT
#include "bgemm_scalar_impl.h"
#else
/* Elsewhere XI_POPCOUNT64 needs no target flag: an instruction (aarch64) or SWAR (32-bit ARM). */
void xi_bgemm_2x8_scalar_popcnt(int m, int npanels, int taps, int tap_words, const uint64_t *const *a,
                                const uint64_t *b, int32_t *c, int ldc)
{
    xi_bgemm_2x8_scalar(m, npanels, taps, tap_words, a, b, c, ldc);
}
#endif
