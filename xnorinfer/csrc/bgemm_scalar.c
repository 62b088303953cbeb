#include "bgemm.h"
#include "neon.h"
#include "popcount.h"

#define XI_SCALAR_NAME xi_bgemm_scalar
#define XI_SCALAR_ATTR
#include "bgemm_scalar_impl.h"
#undef XI_SCALAR_NAME
#undef XI_SCALAR_ATTR

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define XI_SCALAR_NAME xi_bgemm_scalar_popcnt
#define XI_SCALAR_ATTR __attribute__((target("popcnt")))
#include "bgemm_scalar_impl.h"
#else
/* Elsewhere XI_POPCOUNT64 needs no target flag: an instruction (aarch64) or SWAR (32-bit ARM). */
void xi_bgemm_scalar_popcnt(int m, int nblocks, int taps, int tap_words, const uint64_t *const *a,
                            const uint64_t *b, int32_t *c, int ldc)
{
    xi_bgemm_scalar(m, nblocks, taps, tap_words, a, b, c, ldc);
}
#endif

xi_bgemm_fn xi_bgemm_for(xi_isa isa)
{
    switch (isa) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    case XI_ISA_AVX512:
        return xi_bgemm_avx512;
    case XI_ISA_AVX2:
        return xi_bgemm_avx2;
#endif
#ifdef XI_NEON
    case XI_ISA_NEON:
        return xi_bgemm_neon;
#endif
    default:
        return xi_cpu_has_popcnt() ? xi_bgemm_scalar_popcnt : xi_bgemm_scalar;
    }
}
