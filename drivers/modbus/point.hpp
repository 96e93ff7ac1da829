#pragma once
// A profile point: where a value lives on a Modbus device and how to turn raw registers or bits into
// an engineering value. Decoding is pure: no I/O, tested against known register images.

#include "codec/pdu.hpp"
#include "domain/reading.hpp"
#include "domain/report.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace firegate::modbus {

/// The four Modbus data tables (§4.3 of the application protocol).
enum class register_table : std::uint8_t { coil, discrete_input, holding, input };

enum class data_type : std::uint8_t {
  boolean,  ///< a coil or discrete input
  bit,      ///< one bit of a 16-bit register (alarm and fault words)
  int16,
  uint16,
  int32,
  uint32,
  float32,  ///< IEEE 754 single
};

/// Byte order inside each 16-bit register; "little" swaps the two bytes.
enum class byte_order : std::uint8_t { big, little };
/// Register order of 32-bit values; "little" puts the low word first (a well-known gas detector does).
enum class word_order : std::uint8_t { big, little };

/// Which poll schedule a point is on: alarm-relevant points are read faster than telemetry.
enum class point_group : std::uint8_t { alarm, telemetry };

struct point_def {
  std::string name;
  register_table table{register_table::holding};
  std::uint16_t address{0};
  data_type type{data_type::uint16};
  std::uint8_t bit{0};  ///< for data_type::bit: 0 (least significant) to 15
  byte_order bytes{byte_order::big};
  word_order words{word_order::big};
  double scale{1.0};  ///< engineering value = raw × scale + offset
  double offset{0.0};
  std::string unit;
  std::map<std::int64_t, std::string> labels;  ///< enum table: raw value → meaning
  std::vector<std::int64_t> invalid;           ///< raw values that mean "no value" (0x7FFF = probe open)
  point_group group{point_group::telemetry};
  report_policy report;  ///< how its values go to the platform (every poll unless the profile says)
};

/// Registers a point occupies: 2 for 32-bit types, 1 otherwise (bits of a coil table count 1 bit).
std::uint16_t register_span(const point_def& p);
/// The function that reads the point's table.
function_code read_function(register_table t);

struct point_value {
  double value{0};
  quality q{quality::good};
};

/// Decodes a register point from the registers starting at its address (register_span(p) of them).
point_value decode_registers(const point_def& p, std::span<const std::uint16_t> registers);
/// Decodes a boolean point from its coil or discrete input.
point_value decode_bit(const point_def& p, bool bit);

/// The inverse of decode_registers: writes `value` (an engineering value, scale and offset undone)
/// into the point's registers (register_span(p) of them). A bit point changes its bit only; the
/// rest of the register is kept. illegal_data_value when the raw value does not fit the type.
std::error_code encode_registers(const point_def& p, double value, std::span<std::uint16_t> registers);

}  // namespace firegate::modbus
