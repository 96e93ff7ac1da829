#include "condition.hpp"

#include <algorithm>
#include <cmath>

namespace firegate::rules {

std::optional<bool> condition::holds(double value, quality q, mono::time_point now) {
  if (spec_->kind == condition_kind::bad_quality) return q == quality::bad;
  if (spec_->kind == condition_kind::stale) return q == quality::good ? std::optional(false) : std::nullopt;
  // A value the device itself says is unusable decides nothing here (a bad_quality rule reports it).
  if (q != quality::good || !std::isfinite(value)) return std::nullopt;
  // Once raised, a threshold holds until the value passes `clear`: the hysteresis that stops a
  // value hovering at the threshold from chattering. A debounce counts the plain threshold.
  switch (spec_->kind) {
    case condition_kind::high:
      return value >= spec_->set || (active_ && value > spec_->clear);
    case condition_kind::low:
      return value <= spec_->set || (active_ && value < spec_->clear);
    case condition_kind::equals:
      return std::find(spec_->values.begin(), spec_->values.end(), value) != spec_->values.end();
    case condition_kind::bit:
      return value >= 0 && ((static_cast<std::uint64_t>(value) >> spec_->bit) & 1U) != 0;
    case condition_kind::rate_of_rise: {
      history_.emplace_back(now, value);
      const auto first_kept = std::find_if(history_.begin(), history_.end() - 1,
                                           [&](const auto& h) { return now - h.first <= spec_->window; });
      history_.erase(history_.begin(), first_kept);
      const auto span = now - history_.front().first;
      // Samples missing inside the window do not matter: the rate is over the time actually spanned.
      if (span < spec_->min_span || span <= mono::duration::zero()) return std::nullopt;
      const double minutes = std::chrono::duration<double, std::ratio<60>>(span).count();
      value_ = (value - history_.front().second) / minutes;
      return value_ >= spec_->per_minute;
    }
    case condition_kind::bad_quality:
    case condition_kind::stale:
      break;
  }
  return std::nullopt;
}

change condition::settle(bool holds_now, mono::time_point now) {
  if (!holds_now) {
    pending_since_.reset();
    pending_samples_ = 0;
    if (!active_) return change::none;
    active_ = false;
    return change::cleared;
  }
  if (active_) return change::none;
  if (!pending_since_) {
    pending_since_ = now;
    pending_samples_ = 0;
  }
  ++pending_samples_;
  if (now - *pending_since_ < spec_->delay || pending_samples_ < spec_->samples) return change::none;
  active_ = true;
  pending_since_.reset();
  pending_samples_ = 0;
  return change::raised;
}

change condition::on_sample(double value, quality q, mono::time_point now) {
  if (q == quality::good) last_good_ = now;
  const auto h = holds(value, q, now);
  if (!h) return change::none;
  if (spec_->kind != condition_kind::rate_of_rise) value_ = value;
  return settle(*h, now);
}

change condition::on_tick(mono::time_point now) {
  if (spec_->kind == condition_kind::stale) {
    if (!last_good_) last_good_ = now;  // the watch starts now
    if (now - *last_good_ < spec_->stale_after) return change::none;
    value_ = std::chrono::duration<double>(now - *last_good_).count();
    return settle(true, now);
  }
  // A debounce by time alone completes between samples.
  if (active_ || !pending_since_ || pending_samples_ < spec_->samples ||
      now - *pending_since_ < spec_->delay) {
    return change::none;
  }
  active_ = true;
  pending_since_.reset();
  pending_samples_ = 0;
  return change::raised;
}

}  // namespace firegate::rules
