/* Set bits of a 64-bit word without a library call. GCC's __builtin_popcountll is one instruction
 * on x86-64 with popcnt and on aarch64, but on 32-bit ARM it is a call into libgcc per word (the
 * scalar GEMM's inner loop); this SWAR form is ~12 ALU instructions, on 32-bit halves there so
 * that no 64-bit multiply is emulated. */
#ifndef XNORINFER_POPCOUNT_H
#define XNORINFER_POPCOUNT_H

#include <stdint.h>

static inline int xi_popcount32_swar(uint32_t v)
{
    v -= (v >> 1) & 0x55555555u;
    v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
    v = (v + (v >> 4)) & 0x0f0f0f0fu;
    return (int)((v * 0x01010101u) >> 24);
}

static inline int xi_popcount64_swar(uint64_t v)
{
#if UINTPTR_MAX == 0xffffffffu
    return xi_popcount32_swar((uint32_t)v) + xi_popcount32_swar((uint32_t)(v >> 32));
#else
    v -= (v >> 1) & 0x5555555555555555ull;
    v = (v & 0x3333333333333333ull) + ((v >> 2) & 0x3333333333333333ull);
    v = (v + (v >> 4)) & 0x0f0f0f0f0f0f0f0full;
    return (int)((v * 0x0101010101010101ull) >> 56);
#endif
}

/* The scalar GEMM's popcount: the builtin where it is an instruction or a fast routine, SWAR on
 * 32-bit ARM. */
#if defined(__arm__)
#define XI_POPCOUNT64(v) xi_popcount64_swar(v)
#else
#define XI_POPCOUNT64(v) __builtin_popcountll(v)
#endif

#endif
