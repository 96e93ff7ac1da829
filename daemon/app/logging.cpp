#include "logging.hpp"

#include "log_ring.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

namespace firegate {
namespace {

/// %* → "<N>": the sd-daemon(3) priority prefix for the record's level.
class priority_flag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    static constexpr char digits[] = {'7', '7', '6', '4', '3', '2', '6'};  // trace..critical, off
    const char prefix[] = {'<', digits[static_cast<int>(msg.level)], '>'};
    dest.append(prefix, prefix + 3);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<priority_flag>(); }
};

}  // namespace

bool stderr_is_journal() {
  return std::getenv("JOURNAL_STREAM") != nullptr;
}

bool setup_logging(std::string_view level, bool journald) {
  // The recent lines are kept too, for the platform's logs and diagnostics commands.
  auto ring = std::make_shared<log_ring>();
  set_recent_log(ring);
  auto logger = std::make_shared<spdlog::logger>(
      "firegate", spdlog::sinks_init_list{std::make_shared<spdlog::sinks::stderr_sink_mt>(), ring});
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  if (journald) {
    formatter->add_flag<priority_flag>('*').set_pattern("%*%v");
  } else {
    formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");
  }
  logger->set_formatter(std::move(formatter));
  const auto parsed = spdlog::level::from_str(std::string(level));
  const bool known = parsed != spdlog::level::off || level == "off";
  logger->set_level(known ? parsed : spdlog::level::info);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
  return known;
}

}  // namespace firegate
