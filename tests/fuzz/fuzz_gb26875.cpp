// libFuzzer target: the GB/T 26875.3 frame reader (bytes as a centre sends them over TCP, cut into
// reads where the first byte says) and the application data decoder and describer behind it. They
// must never crash or read out of bounds; every frame they accept must encode back to the same bytes.

#include "gb26875/app_data.hpp"
#include "gb26875/frame.hpp"

#include <cstdlib>

using namespace firegate::gb26875;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t chunk = 1 + data[0] % 64u;
  std::span<const std::uint8_t> rest(data + 1, size - 1);
  frame_reader reader;
  std::size_t frames = 0;
  for (std::size_t at = 0; at < rest.size(); at += chunk) {
    reader.feed(rest.subspan(at, std::min(chunk, rest.size() - at)));
    while (auto r = reader.next()) {
      if (r->frame.has_value() == r->fault.has_value()) std::abort();  // exactly one
      if (!r->frame) continue;
      ++frames;
      const auto bytes = encode(*r->frame);
      const auto again = decode_one(bytes);
      if (!again.frame || !(*again.frame == *r->frame)) std::abort();
      std::string error;
      if (auto d = decode_app_data(r->frame->data, error)) {
        if (describe(*d).empty()) std::abort();
        // What decodes encodes again (texts may lose bytes after a zero; lengths must agree).
        try {
          if (encode(*d).size() != r->frame->data.size()) std::abort();
        } catch (const std::invalid_argument&) {
          std::abort();
        }
      } else if (error.empty()) {
        std::abort();
      }
    }
  }
  if (reader.buffered() > rest.size()) std::abort();
  (void)frames;
  (void)decode_one(rest);
  return 0;
}
