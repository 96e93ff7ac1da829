// libFuzzer target: a config_apply's patch (docs/remote.md), from the platform, applied to a site
// file. The input is the site file's text, a NUL byte, then the patch's JSON. Any bytes must give
// either a new file or a reason, never both and never a crash; a new file must parse as TOML again;
// and the diff of any two texts is one line.

#include "config/config_patch.hpp"

#include <toml++/toml.h>

#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto cut = input.find('\0');
  const auto site = input.substr(0, cut);
  const auto patch = cut == std::string_view::npos ? std::string_view{} : input.substr(cut + 1);
  const auto r = firegate::config::apply_patch(site, patch);
  if (r.text.has_value() == !r.error.empty()) std::abort();
  if (r.text) {
    try {
      (void)toml::parse(*r.text);
    } catch (const toml::parse_error&) {
      std::abort();
    }
    if (firegate::config::diff_summary(site, *r.text).find('\n') != std::string::npos) std::abort();
  }
  if (firegate::config::diff_summary(site, patch).find('\n') != std::string::npos) std::abort();
  return 0;
}
