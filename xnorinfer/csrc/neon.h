/* Helpers the NEON (Advanced SIMD) kernels share; where they are compiled is arch.h's XI_NEON. */
#ifndef XNORINFER_NEON_H
#define XNORINFER_NEON_H

#include "arch.h"

/* Region markers for llvm-mca (benchmarks/arm_mca.py builds with -DXI_MCA); nothing otherwise,
 * since a volatile asm statement would pin the loop's schedule in the real build. */
#ifdef XI_MCA
#if defined(__aarch64__)
#define XI_MCA_MARK(what) __asm__ volatile("// LLVM-MCA-" what)
#else
#define XI_MCA_MARK(what) __asm__ volatile("@ LLVM-MCA-" what)
#endif
#else
#define XI_MCA_MARK(what) ((void)0)
#endif

#ifdef XI_NEON
#include <stdint.h>
#ifdef XI_NEON_BY_ATTRIBUTE
#pragma GCC push_options
#pragma GCC target("arch=armv7-a+simd")
#include <arm_neon.h>
#pragma GCC pop_options
#else
#include <arm_neon.h>
#endif

/* The OR of the lanes of w, whose lanes hold disjoint bits: a pairwise add rather than AArch64's
 * ADDV, which ARMv7 lacks. */
XI_NEON_TARGET static inline __attribute__((always_inline)) uint32_t xi_neon_or_lanes(uint32x4_t w)
{
#if defined(__aarch64__)
    return vaddvq_u32(w);
#else
    uint32x2_t s = vorr_u32(vget_low_u32(w), vget_high_u32(w));
    s = vpadd_u32(s, s);
    return vget_lane_u32(s, 0);
#endif
}

/* Bit i of the result is lane i of a 4-lane compare mask m, given weights = lane i's bits. */
XI_NEON_TARGET static inline __attribute__((always_inline)) uint32_t xi_neon_mask_bits(uint32x4_t m, uint32x4_t weights)
{
    return xi_neon_or_lanes(vandq_u32(m, weights));
}
#endif

#endif
