#include "profile.hpp"

#include <algorithm>
#include <map>

namespace firegate::modbus {

device_profile make_profile(std::string name, std::vector<point_def> points) {
  device_profile profile{std::move(name), std::move(points), {}};
  std::map<function_code, std::vector<std::size_t>> by_table;
  for (std::size_t i = 0; i < profile.points.size(); ++i) by_table[profile.points[i].table].push_back(i);
  for (auto& [table, indexes] : by_table) {
    std::sort(indexes.begin(), indexes.end(), [&](std::size_t a, std::size_t b) {
      return profile.points[a].address < profile.points[b].address;
    });
    read_block block;
    for (auto i : indexes) {
      const auto address = profile.points[i].address;
      if (!block.points.empty() && address - block.request.address + 1 > max_read_registers) {
        profile.blocks.push_back(std::move(block));
        block = {};
      }
      if (block.points.empty()) block.request = {table, address, 0};
      block.request.count = static_cast<std::uint16_t>(address - block.request.address + 1);
      block.points.push_back(i);
    }
    if (!block.points.empty()) profile.blocks.push_back(std::move(block));
  }
  return profile;
}

double decode_point(const point_def& p, std::uint16_t raw) {
  const double value = p.type == data_type::int16 ? static_cast<double>(static_cast<std::int16_t>(raw))
                                                  : static_cast<double>(raw);
  return value * p.scale;
}

namespace {

/// SD-1 RS-485 smoke detector (shared/domain/devices.md): input registers, fc 04.
const device_profile& sd1() {
  static const device_profile profile = make_profile(
      "SD-1",
      {
          {"state", function_code::read_input_registers, 0x0000, data_type::uint16, 1.0, ""},
          {"smoke", function_code::read_input_registers, 0x0001, data_type::uint16, 0.01, "dB/m"},
          {"temperature", function_code::read_input_registers, 0x0002, data_type::int16, 0.1, "°C"},
          {"supply_voltage", function_code::read_input_registers, 0x0003, data_type::uint16, 0.01, "V"},
      });
  return profile;
}

}  // namespace

const device_profile* find_builtin_profile(std::string_view name) {
  if (name == "SD-1") return &sd1();
  return nullptr;
}

std::vector<std::string> builtin_profile_names() {
  return {"SD-1"};
}

}  // namespace firegate::modbus
