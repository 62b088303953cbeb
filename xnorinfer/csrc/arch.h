/* Which kernels this build compiles, and the target attribute of each instruction-set level: the
 * one place that spells out architecture guards and target strings.
 *
 * Every SIMD kernel is compiled into the one extension with a per-function target attribute, so
 * the default build needs no -march flag and runs on any CPU of its architecture; isa.c decides at
 * run time which kernels run (kernels.c holds them, one row per ISA).
 *
 * XI_X86   x86-64 with GCC or clang: the AVX2, AVX-512BW and AVX-512 (VPOPCNTDQ) kernels.
 * XI_NEON  Advanced SIMD kernels: aarch64, or 32-bit ARM with NEON in the build (-mfpu=neon) or
 *          by target attribute (GCC, ARMv6/v7 hard-float builds; they run only where HWCAP says).
 */
#ifndef XNORINFER_ARCH_H
#define XNORINFER_ARCH_H

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define XI_X86 1
/* Per level, the features its kernels may use. The build passes -ffp-contract=off, so FMA appears
 * only where a kernel asks for it (__builtin_fmaf), never by contraction. */
#define XI_TARGET_POPCNT __attribute__((target("popcnt")))
#define XI_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define XI_TARGET_AVX512F __attribute__((target("avx512f,fma")))
#define XI_TARGET_AVX512BW __attribute__((target("avx512f,avx512bw,fma")))
#define XI_TARGET_AVX512_VPOPCNTDQ __attribute__((target("avx512f,avx512vpopcntdq,fma")))
#endif

/* aarch64: Advanced SIMD is in every ARMv8-A CPU's base ISA, so no target attribute is needed.
 * 32-bit ARM: NEON is optional (Raspberry Pi OS 32-bit builds for ARMv6, Debian armhf for ARMv7
 * without NEON), so unless the build already has -mfpu=neon each NEON function carries a target
 * attribute and runs only when the kernel reports HWCAP_NEON (isa.c). That needs GCC; a clang
 * build without -mfpu=neon stays scalar.
 *
 * ARMv7's Advanced SIMD always flushes subnormal inputs and results of float operations to zero
 * (FPSCR.FZ does not govern it), while the scalar VFP code keeps them; XI_NEON_FTZ marks that, and
 * float kernels that must give scalar's bits treat tiny lanes separately or stay scalar there. */
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

/* NEON float kernels (conv, dense, pooling, the binary conv's epilogue, BWN): only where NEON float
 * arithmetic keeps subnormals as the scalar code does, i.e. aarch64; ARMv7 runs the scalar float
 * kernels (VFP, IEEE) beside its NEON GEMM and packer. */
#if defined(XI_NEON) && !defined(XI_NEON_FTZ)
#define XI_NEON_FLOAT 1
#endif

#endif
