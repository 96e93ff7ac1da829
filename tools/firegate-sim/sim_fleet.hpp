#pragma once
// The simulated devices: SD-1 smoke detectors (shared/domain/devices.md) with realistic drift and
// scripted changes. Owned by the simulator's loop; not thread-safe.

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace firegate::sim {

/// SD-1's command register: write 1 to silence, 2 to reset.
inline constexpr std::uint16_t sd1_command_register = 0x0010;

/// One SD-1: input registers 0x0000–0x0003 (state, smoke 0.01 dB/m, temperature 0.1 °C, supply 0.01 V).
struct sd1_device {
  std::uint16_t state{0};
  std::uint16_t smoke{2};         // 0.02 dB/m: clean air
  std::int16_t temperature{215};  // 21.5 °C
  std::uint16_t supply{2400};     // 24.00 V
  bool answering{true};           ///< false: the device is dead on the wire
};

class fleet {
 public:
  fleet(std::uint8_t first_unit, std::size_t count, std::uint64_t seed);

  /// The register at `address`, or nullopt when this device has none there (exception 2).
  std::optional<std::uint16_t> read_register(std::uint8_t unit, std::uint16_t address) const;
  /// Whether a request to `unit` gets any answer.
  bool answers(std::uint8_t unit) const;
  /// Applies a change: field is state, smoke, temperature, supply or answering. Returns an error text.
  std::optional<std::string> apply(std::uint8_t unit, std::string_view field, long value);
  /// Small random drift of smoke, temperature and supply, as real sensors show.
  void drift();

 private:
  std::map<std::uint8_t, sd1_device> devices_;
  std::mt19937 random_;
};

}  // namespace firegate::sim
