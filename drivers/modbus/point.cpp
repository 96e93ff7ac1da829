#include "point.hpp"

#include "modbus_error.hpp"

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
  const auto value = static_cast<double>(raw);
  // A scale of 1/n (0.1, 0.01, 0.05) divides by n: 3 × 0.1 is 0.30000000000000004 in binary, while
  // 3 / 10 is the double nearest 0.3, the decimal the device means. The platform's JSON and the
  // store's packed values (docs/storage.md) are shorter for it. An offset that is a whole number
  // of steps is added before the division, for the same reason.
  if (std::fabs(p.scale) < 1) {
    const double n = std::round(1 / p.scale);
    if (std::fabs(n) <= 1e6 && 1 / n == p.scale) {
      const double steps = std::round(p.offset * n);
      if (steps / n == p.offset && std::fabs(steps) < 1e15) return {(value + steps) / n, quality::good};
      return {value / n + p.offset, quality::good};
    }
  }
  return {value * p.scale + p.offset, quality::good};
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

std::error_code encode_registers(const point_def& p, double value, std::span<std::uint16_t> regs) {
  if (regs.size() < register_span(p) || !std::isfinite(value)) return modbus_errc::illegal_data_value;
  const double raw = (value - p.offset) / p.scale;
  const auto put32 = [&](std::uint32_t v) {
    const auto high = static_cast<std::uint16_t>(v >> 16);
    const auto low = static_cast<std::uint16_t>(v & 0xFFFF);
    regs[0] = ordered(p, p.words == word_order::big ? high : low);
    regs[1] = ordered(p, p.words == word_order::big ? low : high);
  };
  if (p.type == data_type::float32) {
    const auto f = static_cast<float>(raw);
    if (!std::isfinite(f)) return modbus_errc::illegal_data_value;
    put32(std::bit_cast<std::uint32_t>(f));
    return {};
  }
  // Integer types: the raw value must be whole (within rounding of the scale) and fit the type.
  const double whole = std::round(raw);
  if (std::abs(raw - whole) > 1e-6 * std::max(1.0, std::abs(raw))) return modbus_errc::illegal_data_value;
  const auto within = [&](double lo, double hi) { return whole >= lo && whole <= hi; };
  switch (p.type) {
    case data_type::boolean:
    case data_type::bit: {
      if (!within(0, 1)) return modbus_errc::illegal_data_value;
      if (p.type == data_type::boolean) {
        regs[0] = whole != 0 ? 1 : 0;
        return {};
      }
      auto r = ordered(p, regs[0]);
      const auto mask = static_cast<std::uint16_t>(1u << p.bit);
      r = static_cast<std::uint16_t>(whole != 0 ? (r | mask) : (r & ~mask));
      regs[0] = ordered(p, r);
      return {};
    }
    case data_type::int16:
      if (!within(-32768, 32767)) return modbus_errc::illegal_data_value;
      regs[0] = ordered(p, static_cast<std::uint16_t>(static_cast<std::int16_t>(whole)));
      return {};
    case data_type::uint16:
      if (!within(0, 65535)) return modbus_errc::illegal_data_value;
      regs[0] = ordered(p, static_cast<std::uint16_t>(whole));
      return {};
    case data_type::int32:
      if (!within(-2147483648.0, 2147483647.0)) return modbus_errc::illegal_data_value;
      put32(static_cast<std::uint32_t>(static_cast<std::int32_t>(whole)));
      return {};
    case data_type::uint32:
      if (!within(0, 4294967295.0)) return modbus_errc::illegal_data_value;
      put32(static_cast<std::uint32_t>(whole));
      return {};
    case data_type::float32:
      break;
  }
  return modbus_errc::illegal_data_value;
}

}  // namespace firegate::modbus
