/* The kernel table: one row per instruction-set level (kernels.h). A row may reuse another's
 * entries where its level brings nothing faster. */
#include "kernels.h"

#include <stddef.h>

#define XI_BGEMM(mr, nr, sfx)                                                                                          \
    .bgemm = xi_bgemm_##mr##x##nr##_##sfx, .bgemm_name = "bgemm_" #mr "x" #nr "_" #sfx, .bgemm_mr = mr, .bgemm_nr = nr
#define XI_BCONV(epilogue_sfx, pack_sfx)                                                                               \
    .bconv_epilogue = xi_bconv_epilogue_##epilogue_sfx, .pack_run = xi_pack_run_##pack_sfx
#define XI_FLOAT(sfx)                                                                                                  \
    .conv2d = xi_conv2d_##sfx, .conv2d_max_pool = xi_conv2d_max_pool_##sfx, .pool2d = xi_pool2d_##sfx,                 \
    .dense = xi_dense_##sfx, .global_avg_pool = xi_global_avg_pool_##sfx, .bwn_conv2d = xi_bwn_conv2d_##sfx,           \
    .bwn_dense = xi_bwn_dense_##sfx

static const xi_kernels scalar = {.isa = "scalar", XI_BGEMM(2, 8, scalar), XI_BCONV(scalar, scalar), XI_FLOAT(scalar)};

#ifdef XI_X86
/* x86-64's scalar level counts with the popcnt instruction where the CPU has it. */
static const xi_kernels scalar_popcnt = {
    .isa = "scalar", XI_BGEMM(2, 8, scalar_popcnt), XI_BCONV(scalar, scalar), XI_FLOAT(scalar)};
static const xi_kernels avx2 = {.isa = "avx2", XI_BGEMM(3, 8, avx2), XI_BCONV(avx2, avx2), XI_FLOAT(avx2)};
/* AVX-512F's epilogue, packers and float kernels */
static const xi_kernels avx512bw = {
    .isa = "avx512bw", XI_BGEMM(4, 8, avx512bw), XI_BCONV(avx512, avx512), XI_FLOAT(avx512)};
static const xi_kernels avx512 = {.isa = "avx512", XI_BGEMM(6, 32, avx512), XI_BCONV(avx512, avx512), XI_FLOAT(avx512)};
#endif

#ifdef XI_NEON
/* The NEON GEMM and packer everywhere; the NEON epilogue and float kernels only where NEON float
 * arithmetic keeps subnormals (arch.h's XI_NEON_FLOAT, aarch64), the scalar ones on ARMv7. */
static const xi_kernels neon = {
    .isa = "neon",
#if XI_BGEMM_NEON_MR == 4
    XI_BGEMM(4, 8, neon),
#else
    XI_BGEMM(2, 8, neon),
#endif
#ifdef XI_NEON_FLOAT
    XI_BCONV(neon, neon),
    XI_FLOAT(neon),
#else
    XI_BCONV(scalar, neon),
    XI_FLOAT(scalar),
#endif
};
#endif

static const xi_kernels *const rows[XI_ISA_COUNT] = {
    [XI_ISA_SCALAR] = &scalar,
#ifdef XI_X86
    [XI_ISA_AVX2] = &avx2,
    [XI_ISA_AVX512BW] = &avx512bw,
    [XI_ISA_AVX512] = &avx512,
#endif
#ifdef XI_NEON
    [XI_ISA_NEON] = &neon,
#endif
};

const xi_kernels *xi_kernels_for(xi_isa isa)
{
    if (isa < 0 || isa >= XI_ISA_COUNT)
        return NULL;
#ifdef XI_X86
    if (isa == XI_ISA_SCALAR && (xi_cpu_features() & XI_CPU_POPCNT))
        return &scalar_popcnt;
#endif
    return rows[isa];
}

const xi_kernels *xi_kernels_get(void) { return xi_kernels_for(xi_isa_get()); }
