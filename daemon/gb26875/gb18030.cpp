#include "gb18030.hpp"

#include <iconv.h>

#include <optional>

namespace firegate::gb26875 {
namespace {

/// An iconv handle for one call's characters (opened once: opening is the costly part).
class converter {
 public:
  converter(const char* to, const char* from) : cd_(::iconv_open(to, from)) {}
  ~converter() {
    if (ok()) ::iconv_close(cd_);
  }
  converter(const converter&) = delete;
  converter& operator=(const converter&) = delete;
  bool ok() const { return cd_ != reinterpret_cast<iconv_t>(-1); }
  /// One character's bytes converted; nullopt when they do not convert.
  std::optional<std::string> operator()(std::string_view in) {
    if (!ok()) return std::nullopt;
    ::iconv(cd_, nullptr, nullptr, nullptr, nullptr);  // the initial state
    char buffer[16];
    auto* src = const_cast<char*>(in.data());
    std::size_t src_left = in.size();
    char* dst = buffer;
    std::size_t dst_left = sizeof buffer;
    if (::iconv(cd_, &src, &src_left, &dst, &dst_left) == static_cast<std::size_t>(-1) || src_left != 0)
      return std::nullopt;
    return std::string(buffer, sizeof buffer - dst_left);
  }

 private:
  iconv_t cd_;
};

/// The length of the UTF-8 sequence starting with `lead`; 0 when it cannot start one.
std::size_t utf8_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 0;
}

}  // namespace

std::string to_gb18030(std::string_view utf8, std::size_t max) {
  converter convert("GB18030", "UTF-8");
  std::string out;
  for (std::size_t i = 0; i < utf8.size();) {
    auto n = utf8_length(static_cast<unsigned char>(utf8[i]));
    std::optional<std::string> piece;
    if (n == 1) {
      piece = std::string(1, utf8[i]);  // ASCII is itself in GB 18030
    } else if (n != 0 && i + n <= utf8.size()) {
      piece = convert(utf8.substr(i, n));
    }
    if (!piece) {
      piece = "?";
      n = 1;
    }
    if (out.size() + piece->size() > max) break;
    out += *piece;
    i += n;
  }
  return out;
}

std::string from_gb18030(std::string_view gb) {
  // Character by character, so that one bad byte costs one '?'. GB 18030 characters are 1, 2 or
  // 4 bytes: a lead byte 0x81-0xFE, then 0x40-0xFE (two) or 0x30-0x39 (four).
  converter convert("UTF-8", "GB18030");
  std::string out;
  for (std::size_t i = 0; i < gb.size();) {
    const auto lead = static_cast<unsigned char>(gb[i]);
    std::size_t n = 1;
    if (lead >= 0x81 && lead <= 0xFE && i + 1 < gb.size()) {
      const auto second = static_cast<unsigned char>(gb[i + 1]);
      n = second >= 0x30 && second <= 0x39 ? 4 : 2;
    }
    std::optional<std::string> piece;
    if (lead < 0x20 || lead == 0x7F) {
      piece = "?";  // a control character is not printed
    } else if (lead < 0x80) {
      piece = std::string(1, static_cast<char>(lead));
    } else if (i + n <= gb.size()) {
      piece = convert(gb.substr(i, n));
    }
    if (!piece) {
      piece = "?";
      n = 1;
    }
    out += *piece;
    i += n;
  }
  return out;
}

}  // namespace firegate::gb26875
