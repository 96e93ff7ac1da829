#include "domain/time_text.hpp"

#include <fmt/format.h>

#include <ctime>

#include <chrono>

namespace firegate {

std::string iso8601(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm local{};
  localtime_r(&secs, &local);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &local);
  const long offset_min = local.tm_gmtoff / 60;
  const char sign = offset_min < 0 ? '-' : '+';
  const long abs_min = offset_min < 0 ? -offset_min : offset_min;
  return fmt::format("{}.{:03}{}{:02}:{:02}", date, ms % 1000, sign, abs_min / 60, abs_min % 60);
}

std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view text) {
  // YYYY-MM-DD(T| )HH:MM:SS[.fff...](Z|±HH:MM|±HHMM)
  const auto digits = [&](std::size_t at, std::size_t n) -> std::optional<int> {
    if (at + n > text.size()) return std::nullopt;
    int v = 0;
    for (std::size_t i = at; i < at + n; ++i) {
      if (text[i] < '0' || text[i] > '9') return std::nullopt;
      v = v * 10 + (text[i] - '0');
    }
    return v;
  };
  const auto at = [&](std::size_t i, char c) { return i < text.size() && text[i] == c; };
  const auto year = digits(0, 4), month = digits(5, 2), day = digits(8, 2), hour = digits(11, 2),
             minute = digits(14, 2), second = digits(17, 2);
  if (!year || !month || !day || !hour || !minute || !second || !at(4, '-') || !at(7, '-') ||
      !(at(10, 'T') || at(10, 't') || at(10, ' ')) || !at(13, ':') || !at(16, ':')) {
    return std::nullopt;
  }
  std::size_t i = 19;
  std::chrono::nanoseconds fraction{0};
  if (at(i, '.')) {
    ++i;
    std::int64_t scale = 100'000'000;
    const auto begin = i;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
      fraction += std::chrono::nanoseconds((text[i] - '0') * scale);
      scale /= 10;
    }
    if (i == begin || i - begin > 9) return std::nullopt;
  }
  std::chrono::minutes offset{0};
  if (at(i, 'Z') || at(i, 'z')) {
    ++i;
  } else if (at(i, '+') || at(i, '-')) {
    const bool colon = at(i + 3, ':');
    const auto oh = digits(i + 1, 2), om = digits(i + (colon ? 4 : 3), 2);
    if (!oh || !om || *oh > 23 || *om > 59) return std::nullopt;
    offset = std::chrono::minutes((*oh * 60 + *om) * (text[i] == '-' ? -1 : 1));
    i += colon ? 6 : 5;
  } else {
    return std::nullopt;
  }
  if (i != text.size()) return std::nullopt;
  const std::chrono::year_month_day date{std::chrono::year(*year),
                                         std::chrono::month(static_cast<unsigned>(*month)),
                                         std::chrono::day(static_cast<unsigned>(*day))};
  // Years a command can mean, and that the clock's nanoseconds since 1970 can hold (to 2262).
  if (!date.ok() || *year < 1970 || *year > 2200 || *hour > 23 || *minute > 59 || *second > 60)
    return std::nullopt;
  const auto local = std::chrono::sys_days(date).time_since_epoch() + std::chrono::hours(*hour) +
                     std::chrono::minutes(*minute) + std::chrono::seconds(*second) + fraction;
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(local - offset));
}

}  // namespace firegate
