#pragma once
// firegatectl gb26875 decode: a captured GB/T 26875.3 frame, field by field, or exactly what is
// wrong with it. No daemon needed.

#include <iosfwd>
#include <string>

namespace firegatectl {

/// Decodes `hex` (pairs of hex digits; spaces, colons, commas and 0x prefixes allowed) and prints
/// it to `out` (as JSON when `as_json`); errors go to `err`. Returns the exit code.
int gb26875_decode(const std::string& hex, bool as_json, std::ostream& out, std::ostream& err);

/// Every frame in `in` (with `as_json`, one JSON document a line), hex lines (a log: the tokens of
/// two hex digits on each line; a pasted dump) or the raw bytes of a capture, found as the
/// uplink's reader finds them on the line: each printed, what is not a frame named, and a count at
/// the end (to `err`). 0 when every candidate was a frame, 1 otherwise.
int gb26875_decode_stream(std::istream& in, bool as_json, std::ostream& out, std::ostream& err);

}  // namespace firegatectl
