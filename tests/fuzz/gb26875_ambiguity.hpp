#pragma once
// Whether a GB/T 26875.3 byte stream is ambiguous: a frame that passes verification (or one
// well-formed but for its command byte) starts inside another one. Then which of the two a reader
// takes depends on how the bytes were cut into reads, and a fuzz target cannot say which frames
// must be read; garbage rarely spells out a whole frame, but a fuzzer can.

#include "gb26875/frame.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace firegate::fuzz {

inline bool gb26875_ambiguous(const std::vector<std::uint8_t>& bytes) {
  namespace gb = firegate::gb26875;
  std::size_t covered_to = 0;  // the end of the last frame seen
  for (std::size_t p = 0; p + gb::header_size + gb::trailer_size <= bytes.size(); ++p) {
    if (bytes[p] != 0x40 || bytes[p + 1] != 0x40) continue;
    const std::size_t length = bytes[p + 24] + (std::size_t{bytes[p + 25]} << 8);
    const auto total = gb::header_size + length + gb::trailer_size;
    if (length > gb::max_data_length || p + total > bytes.size()) continue;
    const auto one = gb::decode_one(std::span(bytes).subspan(p, total));
    if (!one.frame && one.error.find("command byte") == std::string::npos) continue;
    if (p < covered_to) return true;
    covered_to = p + total;
  }
  return false;
}

}  // namespace firegate::fuzz
