#pragma once
// How a poll's values are packed into one row of the store (docs/storage.md, "Readings"): a tag
// byte a value, holding its quality and how it is written, and a varint or a double after it when
// the tag cannot hold the value. Lossless: a value reads back as the same double, bit for bit.

#include "domain/reading.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace firegate::poll_codec {

/// Appends one value to `out`. A value that is a decimal of up to 6 places and fits 53 bits (what
/// registers scaled by 0.1, 0.01, ... and JSON numbers mostly are) takes 1 byte when it is 0 to 14
/// units of its last place, 2 to 4 bytes otherwise; anything else 9 bytes.
void append(std::string& out, double value, quality q);

/// Reads the next value from the front of `in` and consumes it; false (and `in` unchanged) when
/// what is left is not a whole value: a damaged row.
bool next(std::string_view& in, double& value, quality& q);

}  // namespace firegate::poll_codec
