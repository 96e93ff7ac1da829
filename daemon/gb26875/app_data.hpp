#pragma once
// GB/T 26875.3-2011 application data (docs/gb26875.md, "Application data"): a type flag, a count,
// then that many information objects; the status, analog and operation types put a 6-byte time
// label after each object. Table-driven:
// each type is a row of field specs (the codes change with the 2027 revision; a table row is all a
// change takes). Encoding takes values in the row's field order; decoding gives named fields, for
// the centre, the uplink's answers and firegatectl's decoder. No I/O.

#include "frame.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace firegate::gb26875 {

enum class field_kind : std::uint8_t {
  u8,       ///< one byte
  u16,      ///< two bytes, little-endian (status words)
  u32,      ///< four bytes (a component address)
  i16,      ///< a signed analog value
  time6,    ///< a time label
  text31,   ///< 31 bytes of GB 18030 text, zero-padded
  lstring,  ///< a length byte, then that many bytes
};

struct field_spec {
  std::string_view name;
  field_kind kind;
};

struct type_spec {
  std::uint8_t code;
  std::string_view name;
  std::uint8_t max_objects;
  std::span<const field_spec> fields;
  bool time_label;  ///< each object is followed by a time label
  bool uplink;      ///< sent by the UITD (else a centre's downlink)
};

/// The row of `code`, or nullptr for a type the table does not have.
const type_spec* find_type(std::uint8_t code);
/// Every row, in code order.
std::span<const type_spec> all_types();

/// A field's value: a number (u8, u16, u32, i16), bytes (text31, lstring) or a time label.
using field_value = std::variant<std::int64_t, std::string, time_label>;

struct info_object {
  std::vector<field_value> values;  ///< in the row's field order
  std::optional<time_label> time;   ///< for rows with a time label
};

struct app_data {
  std::uint8_t type{0};
  std::vector<info_object> objects;
};

/// The bytes of `d`. Throws std::invalid_argument naming the field when a value does not fit its
/// field (wrong kind, out of range, text too long), the type is unknown, or there are more objects
/// than the type allows.
std::vector<std::uint8_t> encode(const app_data& d);

/// `d` cut into as few parts as keep each within its type's object limit and max_data_length bytes
/// (an answer naming more objects than one frame may carry); objects in order. Throws as encode().
std::vector<app_data> split(const app_data& d);

/// Decodes application data; nullopt with `error` naming the object and field when it does not
/// parse (too short, bytes left over, an unknown type, more objects than allowed).
std::optional<app_data> decode_app_data(std::span<const std::uint8_t> bytes, std::string& error);

/// Field by field, for people: one line per field ("  object 1  component type = 18 (temperature
/// electrical-fire detector)"), with code names from the tables below.
std::vector<std::string> describe(const app_data& d);

// --- code tables (names for describe(), and what the mapping sends) ----------------------------

/// System types (0 general, 1 fire alarm system, ...; 0x81 electrical fire system, a vendor code).
std::string_view system_type_name(std::int64_t code);
/// Component types (17 residual-current electrical-fire detector, 40 smoke detector, ...).
std::string_view component_type_name(std::int64_t code);
/// Analog types (3 temperature 0.1 °C, ...; 128-255 user-defined).
std::string_view analog_type_name(std::int64_t code);
/// The engineering value of `raw` for analog type `code` with its unit ("65.3 °C" for 653 of type
/// 3), from the resolutions the standard gives; empty for a type without one (user-defined).
std::string analog_value_text(std::int64_t code, std::int64_t raw);
/// The set bits of a status word by name ("normal, fire alarm"), per kind of status.
enum class status_kind : std::uint8_t { system, component, uitd, operation };
std::string status_bits(status_kind kind, std::int64_t value);

}  // namespace firegate::gb26875
