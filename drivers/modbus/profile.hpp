#pragma once
// Device profiles: which registers a device has and how to turn them into points.
// Issue 2 ships SD-1 built in; profile files under config/profiles/ replace this table later.

#include "codec/pdu.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace firegate::modbus {

enum class data_type : std::uint8_t { uint16, int16 };

/// One point of a profile: a register and how to scale it.
struct point_def {
  std::string name;
  function_code table{function_code::read_input_registers};
  std::uint16_t address{0};
  data_type type{data_type::uint16};
  double scale{1.0};
  std::string unit;
};

/// A request that covers several points of one table, and which points it covers.
struct read_block {
  read_request request;
  std::vector<std::size_t> points;  ///< indexes into device_profile::points
};

struct device_profile {
  std::string name;
  std::vector<point_def> points;
  std::vector<read_block> blocks;  ///< derived from points by make_profile()
};

/// Builds a profile and groups its points into block reads: one per table, as long as the span fits
/// one request (125 registers).
device_profile make_profile(std::string name, std::vector<point_def> points);

/// The engineering value of `p` from its raw register.
double decode_point(const point_def& p, std::uint16_t raw);

const device_profile* find_builtin_profile(std::string_view name);
std::vector<std::string> builtin_profile_names();

}  // namespace firegate::modbus
