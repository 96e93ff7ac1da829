#include "sim_fleet.hpp"

#include <algorithm>

namespace firegate::sim {

fleet::fleet(std::uint8_t first_unit, std::size_t count, std::uint64_t seed)
    : random_(static_cast<unsigned>(seed)) {
  for (std::size_t i = 0; i < count; ++i) devices_[static_cast<std::uint8_t>(first_unit + i)] = {};
}

std::optional<std::uint16_t> fleet::read_register(std::uint8_t unit, std::uint16_t address) const {
  auto it = devices_.find(unit);
  if (it == devices_.end()) return std::nullopt;
  const auto& d = it->second;
  switch (address) {
    case 0x0000:
      return d.state;
    case 0x0001:
      return d.smoke;
    case 0x0002:
      return static_cast<std::uint16_t>(d.temperature);
    case 0x0003:
      return d.supply;
    case sd1_command_register:
      return 0;  // reads 0
    default:
      return std::nullopt;
  }
}

bool fleet::answers(std::uint8_t unit) const {
  auto it = devices_.find(unit);
  return it != devices_.end() && it->second.answering;
}

std::optional<std::string> fleet::apply(std::uint8_t unit, std::string_view field, long value) {
  auto it = devices_.find(unit);
  if (it == devices_.end()) return "no device at unit " + std::to_string(unit);
  auto& d = it->second;
  if (value < -32768 || value > 65535) return "value out of 16-bit range";
  if (field == "state") {
    if (value < 0 || value > 4) return "state is 0 normal, 1 fire, 2 fault, 3 dirty chamber, 4 test";
    d.state = static_cast<std::uint16_t>(value);
    // A fire also shows in the smoke value.
    d.smoke = d.state == 1 ? std::max<std::uint16_t>(d.smoke, 25) : std::min<std::uint16_t>(d.smoke, 5);
  } else if (field == "smoke") {
    d.smoke = static_cast<std::uint16_t>(value);
  } else if (field == "temperature") {
    d.temperature = static_cast<std::int16_t>(value);
  } else if (field == "supply") {
    d.supply = static_cast<std::uint16_t>(value);
  } else if (field == "answering") {
    d.answering = value != 0;
  } else {
    return "unknown field; use state, smoke, temperature, supply or answering";
  }
  return std::nullopt;
}

void fleet::drift() {
  std::uniform_int_distribution<int> step(-1, 1);
  for (auto& [unit, d] : devices_) {
    if (d.state != 1) d.smoke = static_cast<std::uint16_t>(std::clamp(d.smoke + step(random_), 0, 5));
    d.temperature = static_cast<std::int16_t>(std::clamp(d.temperature + step(random_), 150, 300));
    d.supply = static_cast<std::uint16_t>(std::clamp(d.supply + step(random_), 2380, 2420));
  }
}

}  // namespace firegate::sim
