// libFuzzer target: a poll row's values read back (store/poll_codec.cpp) from a database that may
// be damaged. Any bytes must give values or stop, never a crash or a read past the end; every value
// read, packed again and read back, must be the same double bit for bit (the packing is lossless).

#include "store/poll_codec.hpp"

#include <bit>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  double value = 0;
  firegate::quality q{};
  while (firegate::poll_codec::next(in, value, q)) {
    std::string packed;
    firegate::poll_codec::append(packed, value, q);
    std::string_view again(packed);
    double back = 0;
    firegate::quality back_q{};
    if (!firegate::poll_codec::next(again, back, back_q) || !again.empty()) std::abort();
    // NaN payloads and the sign of zero included: the bits, not the value, must survive.
    if (std::bit_cast<std::uint64_t>(back) != std::bit_cast<std::uint64_t>(value) || back_q != q)
      std::abort();
  }
  return 0;
}
