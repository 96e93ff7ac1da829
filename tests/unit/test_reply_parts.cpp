// Replies in parts (uplink/mqtt/commands.hpp reply_parts) and the log lines kept in memory
// (app/log_ring.hpp): every part within the size asked, parsed back by nlohmann (not the code that
// wrote it), and what the parts carry put together is what was given.

#include "app/log_ring.hpp"
#include "uplink/mqtt/commands.hpp"

#include <spdlog/logger.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <memory>

using namespace firegate;
using json = nlohmann::json;

namespace {

parsed_command a_command(const std::string& name) {
  return parse_command(
      json{{"id", "c-1"}, {"command", name}, {"issued", "2026-12-04T10:00:00+08:00"}}.dump());
}

}  // namespace

TEST_CASE("reply parts: log lines go in order, whole, each part within the size; a line too long is cut") {
  std::vector<std::string> lines;
  for (int i = 0; i < 300; ++i) {
    lines.push_back(fmt::format("2026-12-04T10:00:{:02}.000+08:00 info line {} \"quoted\" \\ tab\t 烟感 {}",
                                i % 60, i, std::string(static_cast<std::size_t>(i % 70), 'x')));
  }
  lines.push_back(std::string(9000, 'y'));  // longer than a part
  lines.push_back("last");
  reply_content c{"logs", {{"level", "info"}}, "lines", lines, {}, false};
  const auto parts = reply_parts("gw-1", a_command("logs"), c, 4096, clock::now());
  REQUIRE(parts.size() > 5);
  std::vector<std::string> back;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    CHECK(parts[i].size() <= 4096);
    const auto j = json::parse(parts[i]);
    CHECK(j["id"] == "c-1");
    CHECK(j["ok"] == true);
    CHECK(j["logs"]["part"] == i + 1);
    CHECK(j["logs"]["parts"] == parts.size());
    CHECK(j["logs"]["level"] == "info");
    for (const auto& l : j["logs"]["lines"]) back.push_back(l.get<std::string>());
  }
  REQUIRE(back.size() == lines.size());
  for (std::size_t i = 0; i + 2 < lines.size(); ++i) CHECK(back[i] == lines[i]);
  CHECK(back[lines.size() - 2].ends_with(" [cut]"));
  CHECK(back[lines.size() - 2].starts_with("yyyy"));
  CHECK(back.back() == "last");
}

TEST_CASE(
    "reply parts: log lines with bytes that are not UTF-8 - replaced, each part still within the size") {
  // A sensor's bytes in a line: a lone byte, an overlong form, a surrogate, a cut sequence; short,
  // and long enough to be cut. nlohmann writes each invalid byte as U+FFFD (3 bytes).
  std::vector<std::string> lines{"id=\xff\xfe", "overlong \xE0\x80\x80", "surrogate \xED\xA0\x80",
                                 "cut \xE4\xB8"};
  std::string bad;
  for (int i = 0; i < 3000; ++i) bad += "\xE0\x80\x80";
  lines.push_back(bad);
  lines.push_back(std::string(5000, '\xff'));
  reply_content c{"logs", json::object(), "lines", lines, {}, false};
  const auto parts = reply_parts("gw-1", a_command("logs"), c, 4096, clock::now());
  std::size_t count = 0;
  for (const auto& p : parts) {
    CHECK(p.size() <= 4096);
    const auto j = json::parse(p);  // valid JSON, valid UTF-8
    count += j["logs"]["lines"].size();
  }
  CHECK(count == lines.size());
  CHECK(json::parse(parts.front())["logs"]["lines"][0] == "id=\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_CASE("reply parts: a text in pieces joins back whole, never cut inside a character") {
  std::string text;
  for (int i = 0; i < 2000; ++i)
    text += fmt::format("{{\"名称\":\"烟感-{}\",\"q\":\"\\\"\",\"n\":{}}},", i, i);
  text += "\x01\x02 end";
  reply_content c{"diagnostics", json::object(), "text", {}, text, true};
  const auto parts = reply_parts("gw-1", a_command("diagnostics"), c, 4096, clock::now());
  REQUIRE(parts.size() > 10);
  std::string joined;
  for (const auto& p : parts) {
    CHECK(p.size() <= 4096);
    const auto j = json::parse(p);
    joined += j["diagnostics"]["text"].get<std::string>();
  }
  CHECK(joined == text);
  // Nothing at all still makes one part.
  reply_content none{"logs", json::object(), "lines", {}, {}, false};
  const auto one = reply_parts("gw-1", a_command("logs"), none, 4096, clock::now());
  REQUIRE(one.size() == 1);
  CHECK(json::parse(one[0])["logs"]["lines"].empty());
}

TEST_CASE("log ring: the newest lines within its bytes - a query by level, age, count and bytes") {
  auto ring = std::make_shared<log_ring>(4096);
  spdlog::logger log("t", ring);
  log.set_level(spdlog::level::debug);
  for (int i = 0; i < 100; ++i) {
    if (i % 10 == 0) {
      log.warn("warned {}", i);
    } else {
      log.info("line {} {}", i, std::string(40, 'z'));
    }
  }
  CHECK(ring->forgotten() > 0);  // 100 lines of ~50 bytes and their slots do not fit 4 KiB
  std::size_t left_out = 0;
  log_ring::query all;
  all.lines = 1000;
  const auto kept = ring->select(all, left_out);
  REQUIRE(!kept.empty());
  CHECK(kept.back().find(" info line 99 ") != std::string::npos);
  CHECK(left_out == 0);
  log_ring::query warn;
  warn.level = spdlog::level::warn;
  const auto warned = ring->select(warn, left_out);
  REQUIRE(!warned.empty());
  for (const auto& l : warned) CHECK(l.find(" warning warned ") != std::string::npos);
  CHECK(warned.back().find("warned 90") != std::string::npos);
  log_ring::query two;
  two.lines = 2;
  const auto last_two = ring->select(two, left_out);
  REQUIRE(last_two.size() == 2);
  CHECK(last_two[1].find("line 99") != std::string::npos);
  CHECK(last_two[0].find("line 98") != std::string::npos);
  CHECK(left_out == kept.size() - 2);
  log_ring::query later;
  later.since = std::chrono::system_clock::now() + std::chrono::minutes(1);
  CHECK(ring->select(later, left_out).empty());
  log_ring::query small;
  small.max_bytes = 200;
  const auto fit = ring->select(small, left_out);
  std::size_t bytes = 0;
  for (const auto& l : fit) bytes += l.size() + 1;
  CHECK(bytes <= 200);
  CHECK(!fit.empty());
}
