#pragma once
// How well one device's recent polls went. A device that answers, but mostly badly (a valid answer
// followed by junk, a line with noise, a gateway that mixes up answers), never fails `offline_after`
// times in a row, so it never goes offline: half its polls are lost and nobody is told. This keeps
// the last `window` outcomes and says when the share of failures crosses into poor (at least
// `poor_at`) and back into good (at most `good_at`): the gap keeps a borderline line from
// flapping. Exception answers are well-formed and do not count; nor do a connection that could not be
// opened or was lost, which is the bus's fault (bus_offline), not one device's: malformed answers, CRC
// errors and timeouts do.

#include "modbus_error.hpp"

#include <fmt/format.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>

namespace firegate::modbus {

class link_quality {
 public:
  static constexpr unsigned window = 20;
  static constexpr unsigned poor_at = 8;  ///< failures in the window that make it poor (40 %)
  static constexpr unsigned good_at = 2;  ///< ... and that make it good again (10 %)

  enum class change {
    none,
    poor,  ///< the share of failures just reached poor_at
    good,  ///< back to good_at or fewer; also said once when the first window fills good, so that
           ///< a fault left open from before a restart can end
  };

  /// One poll's outcome: success (no error) or its error.
  change record(std::error_code ec) {
    std::optional<failure_kind> kind;  // none: the poll succeeded
    if (ec) {
      kind = classify(ec);
      if (kind == failure_kind::exception || kind == failure_kind::connection) return change::none;
    }
    if (filled_ == window && ring_[next_]) --counts_[index(*ring_[next_])];
    ring_[next_] = kind;
    if (kind) ++counts_[index(*kind)];
    next_ = (next_ + 1) % window;
    if (filled_ < window) ++filled_;
    if (filled_ < window) return change::none;
    const auto failed = failures();
    if (!poor_ && failed >= poor_at) {
      poor_ = true;
      told_ = true;
      return change::poor;
    }
    if ((poor_ && failed <= good_at) || (!told_ && failed <= good_at)) {
      poor_ = false;
      told_ = true;
      return change::good;
    }
    return change::none;
  }

  /// Starts over (the device went offline: that fault covers it). The first window after says
  /// good again if it is, so that a fault still open ends.
  void reset() {
    counts_ = {};
    filled_ = 0;
    next_ = 0;
    poor_ = false;
    told_ = false;
  }

  bool poor() const { return poor_; }
  unsigned failures() const {
    return counts_[index(failure_kind::timeout)] + counts_[index(failure_kind::crc)] +
           counts_[index(failure_kind::malformed)];
  }

  /// "9 of the last 20 polls failed (6 malformed, 2 timeouts, 1 CRC error)".
  std::string summary() const {
    std::string kinds;
    const auto add = [&](failure_kind k, const char* one, const char* many) {
      const auto n = counts_[index(k)];
      if (n == 0) return;
      kinds += fmt::format("{}{} {}", kinds.empty() ? "" : ", ", n, n == 1 ? one : many);
    };
    add(failure_kind::malformed, "malformed", "malformed");
    add(failure_kind::crc, "CRC error", "CRC errors");
    add(failure_kind::timeout, "timeout", "timeouts");
    if (kinds.empty()) return fmt::format("none of the last {} polls failed", filled_);
    return fmt::format("{} of the last {} polls failed ({})", failures(), filled_, kinds);
  }

 private:
  static std::size_t index(failure_kind k) { return static_cast<std::size_t>(k); }

  /// The counted outcomes of the last polls: nothing for a success, else what failed (only
  /// timeouts, CRC errors and malformed answers are counted).
  std::array<std::optional<failure_kind>, window> ring_{};
  std::array<unsigned, static_cast<std::size_t>(failure_kind::exception) + 1> counts_{};
  unsigned filled_{0}, next_{0};
  bool poor_{false};
  bool told_{false};  ///< a change was said once (the first good one ends a restored fault)
};

}  // namespace firegate::modbus
