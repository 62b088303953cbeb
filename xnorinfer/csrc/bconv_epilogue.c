/* Per-ISA builds of the binary convolution's epilogue (see bconv_epilogue.h): the generic body in
 * bconv_epilogue_impl.h over the vector primitives defined here for each target. */
#include "bconv_epilogue.h"

#include <stddef.h>
#include <string.h>

#include "kernels.h"

#define XI_SUFFIX scalar
#define XI_TARGET
#include "bconv_epilogue_impl.h"
#undef XI_SUFFIX
#undef XI_TARGET

#ifdef XI_X86
#include <immintrin.h>

#define XI_SUFFIX avx2
#define XI_TARGET XI_TARGET_AVX2
#define XI_LANES 8
#define XI_VF __m256
#define XI_VLOAD(p) _mm256_loadu_ps(p)
#define XI_VSTORE(p, v) _mm256_storeu_ps((p), (v))
#define XI_VADD(a, b) _mm256_add_ps((a), (b))
#define XI_VSUB(a, b) _mm256_sub_ps((a), (b))
#define XI_VMUL(a, b) _mm256_mul_ps((a), (b))
#define XI_VCOUNTS(c, nbits)                                                                       \
    _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_set1_epi32(nbits),                                  \
                                        _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(c)), 1)))
#define XI_VNEG(v) _mm256_sub_ps(_mm256_setzero_ps(), (v))
#define XI_VPRELU(v, slope)                                                                        \
    _mm256_blendv_ps(_mm256_mul_ps((v), (slope)), (v), _mm256_cmp_ps((v), _mm256_setzero_ps(), _CMP_GE_OQ))
#define XI_VLESS_BITS(v, t) ((uint64_t)(unsigned)_mm256_movemask_ps(_mm256_cmp_ps((v), (t), _CMP_LT_OQ)))
#define XI_VLE_BITS(v, t) ((uint64_t)(unsigned)_mm256_movemask_ps(_mm256_cmp_ps((v), (t), _CMP_LE_OQ)))
#define XI_VNAN_LANES(v) ((unsigned)_mm256_movemask_ps(_mm256_cmp_ps((v), (v), _CMP_UNORD_Q)))
#include "bconv_epilogue_impl.h"
#undef XI_SUFFIX
#undef XI_TARGET
#undef XI_LANES
#undef XI_VF
#undef XI_VLOAD
#undef XI_VSTORE
#undef XI_VADD
#undef XI_VSUB
#undef XI_VMUL
#undef XI_VCOUNTS
#undef XI_VNEG
#undef XI_VPRELU
#undef XI_VLESS_BITS
#undef XI_VLE_BITS
#undef XI_VNAN_LANES

#define XI_SUFFIX avx512
#define XI_TARGET XI_TARGET_AVX512F
#define XI_LANES 16
#define XI_VF __m512
#define XI_VLOAD(p) _mm512_loadu_ps(p)
#define XI_VSTORE(p, v) _mm512_storeu_ps((p), (v))
#define XI_VADD(a, b) _mm512_add_ps((a), (b))
#define XI_VSUB(a, b) _mm512_sub_ps((a), (b))
#define XI_VMUL(a, b) _mm512_mul_ps((a), (b))
#define XI_VCOUNTS(c, nbits)                                                                       \
    _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_set1_epi32(nbits), _mm512_slli_epi32(_mm512_loadu_si512(c), 1)))
#define XI_VNEG(v) _mm512_sub_ps(_mm512_setzero_ps(), (v))
/* v * slope in the negative lanes only (v >= 0 keeps v, NaN stays NaN): one masked multiply. */
#define XI_VPRELU(v, slope) _mm512_mask_mul_ps((v), _mm512_cmp_ps_mask((v), _mm512_setzero_ps(), _CMP_LT_OQ), (v), (slope))
#define XI_VLESS_BITS(v, t) ((uint64_t)_mm512_cmp_ps_mask((v), (t), _CMP_LT_OQ))
#define XI_VLE_BITS(v, t) ((uint64_t)_mm512_cmp_ps_mask((v), (t), _CMP_LE_OQ))
#define XI_VNAN_LANES(v) ((unsigned)_mm512_cmp_ps_mask((v), (v), _CMP_UNORD_Q))
#include "bconv_epilogue_impl.h"
#endif /* x86-64 */

#include "neon.h"
/* Only where NEON float arithmetic keeps subnormals (arch.h's XI_NEON_FLOAT, aarch64): an ARMv7
 * NEON epilogue would differ from scalar's bits wherever a value or an operand is tiny. */
#ifdef XI_NEON_FLOAT

static inline uint64_t xi_neon_bits(uint32x4_t m)
{
    const uint32x4_t weights = {1u, 2u, 4u, 8u};
    return xi_neon_mask_bits(m, weights);
}

#define XI_SUFFIX neon
#define XI_TARGET XI_NEON_TARGET
#define XI_LANES 4
#define XI_VF float32x4_t
#define XI_VLOAD(p) vld1q_f32(p)
#define XI_VSTORE(p, v) vst1q_f32((p), (v))
#define XI_VADD(a, b) vaddq_f32((a), (b))
#define XI_VSUB(a, b) vsubq_f32((a), (b))
#define XI_VMUL(a, b) vmulq_f32((a), (b))
#define XI_VCOUNTS(c, nbits) vcvtq_f32_s32(vsubq_s32(vdupq_n_s32(nbits), vshlq_n_s32(vld1q_s32(c), 1)))
#define XI_VNEG(v) vnegq_f32(v)
#define XI_VPRELU(v, slope) vbslq_f32(vcgeq_f32((v), vdupq_n_f32(0.0f)), (v), vmulq_f32((v), (slope)))
#define XI_VLESS_BITS(v, t) xi_neon_bits(vcltq_f32((v), (t)))
#define XI_VLE_BITS(v, t) xi_neon_bits(vcleq_f32((v), (t)))
#define XI_VNAN_LANES(v) ((unsigned)xi_neon_bits(vmvnq_u32(vceqq_f32((v), (v)))))
#include "bconv_epilogue_impl.h"
#endif /* NEON */
