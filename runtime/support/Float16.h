// Conversions between float32 and f16 / bf16 (round to nearest even).
#ifndef WEFT_RUNTIME_SUPPORT_FLOAT16_H
#define WEFT_RUNTIME_SUPPORT_FLOAT16_H

#include <bit>
#include <cstdint>

namespace weft::runtime {

inline float bf16ToFloat(uint16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

inline uint16_t floatToBf16(float f) {
  uint32_t bits = std::bit_cast<uint32_t>(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) // NaN: keep it quiet and a NaN
    return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

inline float halfToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) // inf or NaN
    return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24.
    float v = static_cast<float>(mant) * 0x1p-24f;
    return sign ? -v : v;
  }
  return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
}

inline uint16_t floatToHalf(float f) {
  uint32_t bits = std::bit_cast<uint32_t>(f);
  uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  uint32_t absBits = bits & 0x7fffffffu;
  if (absBits > 0x7f800000u) // NaN
    return sign | 0x7e00u | static_cast<uint16_t>((absBits >> 13) & 0x3ffu);
  if (absBits >= 0x477ff000u) // rounds to or beyond 65520: infinity
    return sign | 0x7c00u;
  if (absBits < 0x38800000u) {
    // Subnormal or zero in f16: round |f| * 2^24 to an integer, ties to even.
    float scaled = std::bit_cast<float>(absBits) * 0x1p24f;
    uint32_t q = static_cast<uint32_t>(scaled);
    float rest = scaled - static_cast<float>(q);
    if (rest > 0.5f || (rest == 0.5f && (q & 1u)))
      ++q;
    return sign | static_cast<uint16_t>(q);
  }
  // Normal: rebias the exponent and round the mantissa to 10 bits.
  uint32_t v = absBits - (112u << 23);
  v += 0xfffu + ((v >> 13) & 1u);
  return sign | static_cast<uint16_t>(v >> 13);
}

} // namespace weft::runtime

#endif // WEFT_RUNTIME_SUPPORT_FLOAT16_H
