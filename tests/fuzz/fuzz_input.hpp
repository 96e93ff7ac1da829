#pragma once
// The fuzz input read as it is consumed, shared by the targets that decode a script from it: a
// byte at a time or a run of bytes, and zeros (or less) once it runs out.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace firegate::fuzz {

struct cursor {
  std::span<const std::uint8_t> bytes;
  std::size_t at{0};
  bool done() const { return at >= bytes.size(); }
  std::uint8_t next() { return done() ? 0 : bytes[at++]; }
  /// The next `n` bytes, fewer at the end.
  std::vector<std::uint8_t> take(std::size_t n) {
    n = left(n);
    std::vector<std::uint8_t> out(bytes.begin() + static_cast<std::ptrdiff_t>(at),
                                  bytes.begin() + static_cast<std::ptrdiff_t>(at + n));
    at += n;
    return out;
  }
  /// The same as text.
  std::string take_text(std::size_t n) {
    n = left(n);
    std::string out(reinterpret_cast<const char*>(bytes.data() + at), n);
    at += n;
    return out;
  }

 private:
  std::size_t left(std::size_t n) const { return std::min(n, bytes.size() - std::min(at, bytes.size())); }
};

}  // namespace firegate::fuzz
