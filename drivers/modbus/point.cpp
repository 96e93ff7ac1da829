#include "point.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace firegate::modbus {

std::uint16_t register_span(const point_def& p) {
  switch (p.type) {
    case data_type::int32:
    case data_type::uint32:
    case data_type::float32:
      return 2;
    default:
      return 1;
  }
}

function_code read_function(register_table t) {
  switch (t) {
    case register_table::coil:
      return function_code::read_coils;
    case register_table::discrete_input:
      return function_code::read_discrete_inputs;
    case register_table::holding:
      return function_code::read_holding_registers;
    case register_table::input:
      return function_code::read_input_registers;
  }
  return function_code::read_holding_registers;
}

namespace {

std::uint16_t ordered(const point_def& p, std::uint16_t r) {
  return p.bytes == byte_order::little ? static_cast<std::uint16_t>((r >> 8) | (r << 8)) : r;
}

std::uint32_t combine(const point_def& p, std::span<const std::uint16_t> regs) {
  const std::uint32_t first = ordered(p, regs[0]);
  const std::uint32_t second = ordered(p, regs[1]);
  return p.words == word_order::big ? (first << 16) | second : (second << 16) | first;
}

point_value scaled(const point_def& p, std::int64_t raw) {
  if (std::find(p.invalid.begin(), p.invalid.end(), raw) != p.invalid.end()) {
    return {static_cast<double>(raw), quality::bad};
  }
  return {static_cast<double>(raw) * p.scale + p.offset, quality::good};
}

}  // namespace

point_value decode_registers(const point_def& p, std::span<const std::uint16_t> regs) {
  if (regs.size() < register_span(p)) return {0, quality::bad};
  switch (p.type) {
    case data_type::boolean:
      return scaled(p, ordered(p, regs[0]) != 0 ? 1 : 0);
    case data_type::bit:
      return scaled(p, (ordered(p, regs[0]) >> p.bit) & 1u);
    case data_type::int16:
      return scaled(p, static_cast<std::int16_t>(ordered(p, regs[0])));
    case data_type::uint16:
      return scaled(p, ordered(p, regs[0]));
    case data_type::int32:
      return scaled(p, static_cast<std::int32_t>(combine(p, regs)));
    case data_type::uint32:
      return scaled(p, combine(p, regs));
    case data_type::float32: {
      const auto f = std::bit_cast<float>(combine(p, regs));
      if (!std::isfinite(f)) return {0, quality::bad};
      return {static_cast<double>(f) * p.scale + p.offset, quality::good};
    }
  }
  return {0, quality::bad};
}

point_value decode_bit(const point_def& p, bool bit) {
  return scaled(p, bit ? 1 : 0);
}

}  // namespace firegate::modbus
