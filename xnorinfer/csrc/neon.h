/* Where the NEON (Advanced SIMD) kernels are compiled, and helpers they share.
 *
 * aarch64: Advanced SIMD is in every ARMv8-A CPU's base ISA, so no target attribute is needed.
 * 32-bit ARM: NEON is optional (Raspberry Pi OS 32-bit builds for ARMv6, Debian armhf for ARMv7
 * without NEON), so unless the build already has -mfpu=neon each NEON function carries a target
 * attribute and runs only when the kernel reports HWCAP_NEON (isa.c). That needs GCC; a clang
 * build without -mfpu=neon stays scalar.
 *
 * ARMv7's Advanced SIMD always flushes subnormal inputs and results of float operations to zero
 * (FPSCR.FZ does not govern it), while the scalar VFP code keeps them; XI_NEON_FTZ marks that, and
 * float kernels that must give scalar's bits treat tiny lanes separately or stay scalar there. */
#ifndef XNORINFER_NEON_H
#define XNORINFER_NEON_H

#if defined(__aarch64__) && defined(__ARM_NEON)
#define XI_NEON 1
#define XI_NEON_TARGET
#elif defined(__arm__) && defined(__ARM_NEON)
#define XI_NEON 1
#define XI_NEON_FTZ 1
#define XI_NEON_TARGET
#elif defined(__arm__) && defined(__GNUC__) && !defined(__clang__) && defined(__ARM_ARCH) && __ARM_ARCH >= 6 && \
    defined(__ARM_PCS_VFP)
/* arch, not only fpu: Raspberry Pi OS 32-bit builds for ARMv6 (the Pi 1 and Zero), where NEON
 * instructions need ARMv7 too. */
#define XI_NEON 1
#define XI_NEON_FTZ 1
#define XI_NEON_TARGET __attribute__((target("arch=armv7-a+simd")))
#define XI_NEON_BY_ATTRIBUTE 1
#endif

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
