#include "poll_codec.hpp"

#include <array>
#include <bit>
#include <cmath>
#include <cstring>

namespace firegate::poll_codec {
namespace {

// The tag byte: bits 0-2 the decimal places k (0-6) of an exact decimal m / 10^k, or 7 for a raw
// IEEE double in the 8 bytes after it (little-endian); bit 3 set for a bad quality; bits 4-7 the
// mantissa m itself when it is 0-14, or 15 when a zigzag varint of m follows.
constexpr unsigned raw_double = 7;
constexpr unsigned bad_quality = 8;
constexpr unsigned varint_follows = 15;
constexpr std::array<double, 7> powers{1, 10, 100, 1e3, 1e4, 1e5, 1e6};
constexpr double largest_exact = 9007199254740992.0;  // 2^53

std::uint64_t zigzag(std::int64_t v) {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}

std::int64_t unzigzag(std::uint64_t v) {
  return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
}

}  // namespace

void append(std::string& out, double value, quality q) {
  const unsigned quality_bit = q == quality::good ? 0 : bad_quality;
  if (std::isfinite(value) && !(value == 0 && std::signbit(value))) {
    for (unsigned k = 0; k < powers.size(); ++k) {
      const double scaled = std::nearbyint(value * powers[k]);
      if (!(std::fabs(scaled) < largest_exact)) break;
      if (scaled / powers[k] != value) continue;
      const auto m = static_cast<std::int64_t>(scaled);
      if (m >= 0 && m < static_cast<std::int64_t>(varint_follows)) {
        out.push_back(static_cast<char>((static_cast<unsigned>(m) << 4) | quality_bit | k));
        return;
      }
      out.push_back(static_cast<char>((varint_follows << 4) | quality_bit | k));
      for (auto z = zigzag(m);; z >>= 7) {
        if (z < 0x80) {
          out.push_back(static_cast<char>(z));
          break;
        }
        out.push_back(static_cast<char>((z & 0x7F) | 0x80));
      }
      return;
    }
  }
  out.push_back(static_cast<char>(quality_bit | raw_double));
  const auto bits = std::bit_cast<std::uint64_t>(value);
  for (unsigned i = 0; i < 8; ++i) out.push_back(static_cast<char>((bits >> (8 * i)) & 0xFF));
}

bool next(std::string_view& in, double& value, quality& q) {
  if (in.empty()) return false;
  const auto tag = static_cast<unsigned char>(in[0]);
  const unsigned k = tag & 7;
  std::size_t used = 1;
  if (k == raw_double) {
    if (in.size() < 9) return false;
    std::uint64_t bits = 0;
    for (std::size_t i = 0; i < 8; ++i)
      bits |= std::uint64_t{static_cast<unsigned char>(in[1 + i])} << (8 * i);
    value = std::bit_cast<double>(bits);
    used = 9;
  } else {
    std::int64_t m = tag >> 4;
    if (m == static_cast<std::int64_t>(varint_follows)) {
      std::uint64_t z = 0;
      for (unsigned shift = 0;; shift += 7) {
        if (used >= in.size() || shift > 63) return false;
        const auto byte = static_cast<unsigned char>(in[used++]);
        z |= std::uint64_t{byte & 0x7Fu} << shift;
        if ((byte & 0x80) == 0) break;
      }
      m = unzigzag(z);
    }
    value = static_cast<double>(m) / powers[k];
  }
  q = (tag & bad_quality) != 0 ? quality::bad : quality::good;
  in.remove_prefix(used);
  return true;
}

}  // namespace firegate::poll_codec
