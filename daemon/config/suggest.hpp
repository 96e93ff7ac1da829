#pragma once
// "Did you mean …?" for names typed by people: config keys, enum values, bus and device names.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace firegate::config {

/// Edit distance with insertions, deletions, substitutions and transpositions of neighbours
/// (optimal string alignment), case-sensitive.
std::size_t edit_distance(std::string_view a, std::string_view b);

/// The candidate closest to `typed` if it is close enough to be a typo: 1 edit for names of up to 4
/// characters, 2 up to 8, 3 beyond. Ties go to the earlier candidate.
std::optional<std::string> closest(std::string_view typed, const std::vector<std::string>& candidates);

/// " did you mean \"x\"?" when closest() finds one, else "".
std::string did_you_mean(std::string_view typed, const std::vector<std::string>& candidates);

}  // namespace firegate::config
