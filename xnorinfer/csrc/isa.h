/* Instruction-set selection for the bit-serial kernels.
 *
 * Every SIMD kernel is compiled into the extension with per-function target attributes, so the
 * default build needs no -march flag and runs on any CPU of its architecture; which kernel runs is
 * decided here at run time from CPU detection (or forced, see xi_isa_set). */
#ifndef XNORINFER_ISA_H
#define XNORINFER_ISA_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    XI_ISA_SCALAR = 0, /* portable C; uses the popcnt instruction where the CPU has it */
    XI_ISA_AVX2 = 1,   /* x86-64 AVX2: nibble-table popcount (AVX2 has no vector popcount) */
    XI_ISA_AVX512 = 2, /* x86-64 AVX-512F + VPOPCNTDQ */
    XI_ISA_NEON = 3,   /* Advanced SIMD, aarch64 or ARMv7 with NEON: byte popcount (CNT) */
    XI_ISA_COUNT = 4
} xi_isa;

const char *xi_isa_name(xi_isa isa);
/* 1 if a kernel for `isa` is compiled into this build. */
int xi_isa_compiled(xi_isa isa);
/* 1 if the kernel is compiled and this CPU (and OS) can run it. */
int xi_isa_supported(xi_isa isa);
/* The best supported ISA. */
xi_isa xi_isa_best(void);
/* The ISA the kernels use now; starts as xi_isa_best(). */
xi_isa xi_isa_get(void);
/* Force an ISA; returns 0 on success, -1 if it is not supported here (nothing changes then). */
int xi_isa_set(xi_isa isa);
/* 1 if the scalar kernel may use the hardware popcount instruction. */
int xi_cpu_has_popcnt(void);

#ifdef __cplusplus
}
#endif
#endif
