// libFuzzer target: the configuration loader with every registered driver's parser. Any text must
// give either a configuration or at least one error, never a crash or a hang.

#include "config/config_loader.hpp"
#include "driver.hpp"

#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto parsers = firegate::driver_parsers();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto result = firegate::config::load_config_text(text, "fuzz.toml", parsers);
  if (result.config.has_value() == !result.errors.empty()) std::abort();
  (void)result.error_text();
  return 0;
}
