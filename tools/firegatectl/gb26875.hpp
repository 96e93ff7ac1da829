#pragma once
// firegatectl gb26875 decode: a captured GB/T 26875.3 frame, field by field, or exactly what is
// wrong with it. No daemon needed.

#include <iosfwd>
#include <string>

namespace firegatectl {

/// Decodes `hex` (pairs of hex digits; spaces, colons, commas and 0x prefixes allowed) and prints
/// it to `out` (as JSON when `as_json`); errors go to `err`. Returns the exit code.
int gb26875_decode(const std::string& hex, bool as_json, std::ostream& out, std::ostream& err);

}  // namespace firegatectl
