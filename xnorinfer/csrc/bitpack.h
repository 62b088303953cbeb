/* Bit packing of signs along the channel axis.
 *
 * Layout: an NHWC tensor with C channels in G groups becomes, per pixel, G runs of
 * ceil((C/G)/64) uint64 words; channel c of a group lives in bit (c % 64) of word c / 64.
 * A set bit means -1, a clear bit +1 (the float sign bit's convention).
 *
 * Sign convention: v = x + bias[c] packs as -1 iff v < 0 (XI_ZERO_TO_ONE, the default: both +0.0
 * and -0.0 pack as +1), or iff v <= 0 (XI_ZERO_TO_MINUS_ONE: both zeros pack as -1). PyTorch's
 * sign(0) is 0, a third value one bit cannot hold. Where the sign's input is >= 0 (a ReLU output)
 * its values are {0, 1} = (1 + S) / 2 with S packed by XI_ZERO_TO_MINUS_ONE, which makes that
 * exact. Bits past the last channel of a group are always 0 in activations and weights alike, so
 * they XOR to 0 and never reach a result.
 *
 * v is the float sum fl(x + bias), and the packers decide the exact sum's sign from it: rounding to
 * nearest keeps the sign of a sum, and a sum of two floats that is subnormal or zero is exact, so
 * fl(x + bias) is 0 only when x = -bias exactly and a positive denormal stays > 0 (this library
 * never sets flush-to-zero or denormals-are-zero; a process that does changes denormals' signs). */
#ifndef XNORINFER_BITPACK_H
#define XNORINFER_BITPACK_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

static inline int64_t xi_words_for(int64_t bits) { return (bits + 63) / 64; }

/* Which sign an exact zero x + bias gets (see above). */
typedef enum { XI_ZERO_TO_ONE = 0, XI_ZERO_TO_MINUS_ONE = 1 } xi_zero_to;

/* Packs x (npix rows of c floats) into out (npix rows of groups * words_for(c / groups) words).
 * bias is NULL or c floats added before taking the sign (ReActNet's RSign); zero_to an xi_zero_to.
 * Returns the number of NaN values met (their bits are unspecified). */
int64_t xi_pack_signs(const float *x, const float *bias, int64_t npix, int c, int groups, int zero_to,
                      uint64_t *out, int nthreads);

/* The inverse: out (npix rows of c floats) gets +1.0f or -1.0f per bit. */
void xi_unpack_signs(const uint64_t *packed, int64_t npix, int c, int groups, float *out,
                     int nthreads);

#ifdef __cplusplus
}
#endif
#endif
