// The folder that keeps the platform's configuration changes (config/config_history.hpp): what is
// saved reads back whole, a damaged state file leaves the site file in force instead of stopping the
// box, and pruning never removes a revision the state still names.

#include "config/config_history.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <string>
#include <thread>

using namespace firegate;
using namespace firegate::config;

namespace {
std::string rev(char c) {
  return std::string(64, c);
}
}  // namespace

TEST_CASE("config history: a saved state reads back with its change waiting", "[config][history]") {
  test::temp_dir dir;
  config_history h(dir / "config");
  history_state st;
  st.base = rev('b');
  st.active = rev('1');
  st.confirmed = rev('0');
  const auto t = std::chrono::time_point_cast<std::chrono::seconds>(clock::now());
  st.pending = pending_change{
      rev('1'), rev('0'), "ops-anna", "cmd-7", "ev-7", t, t + std::chrono::seconds(120), "devices +smoke-9"};
  st.changes.push_back({"applied", rev('1'), rev('0'), t, "ops-anna", "", "devices +smoke-9"});
  h.save(st);
  REQUIRE_FALSE(std::filesystem::exists(dir / "config/state.json.tmp"));
  std::string note;
  const auto back = h.load(note);
  CHECK(note.empty());
  CHECK(back.base == st.base);
  CHECK(back.active == st.active);
  CHECK(back.confirmed == st.confirmed);
  REQUIRE(back.pending);
  CHECK(back.pending->command_id == "cmd-7");
  CHECK(back.pending->by == "ops-anna");
  CHECK(back.pending->event_id == "ev-7");
  CHECK(back.pending->diff == "devices +smoke-9");
  CHECK(back.pending->deadline == t + std::chrono::seconds(120));
  REQUIRE(back.changes.size() == 1);
  CHECK(back.changes[0].diff == "devices +smoke-9");
  CHECK(back.changes[0].time == t);
}

TEST_CASE("config history: a state file that does not parse is moved aside and the site file stands",
          "[config][history]") {
  test::temp_dir dir;
  std::filesystem::create_directories(dir / "config");
  {
    // What a damaged page leaves: half a JSON object.
    std::ofstream out(dir / "config/state.json");
    out << "{\"base\": \"abc\", \"active\": \"11";
  }
  config_history h(dir / "config");
  std::string note;
  const auto st = h.load(note);
  CHECK(st.active.empty());
  CHECK_FALSE(st.pending);
  CHECK(note.find("does not parse") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "config/state.json"));
  bool aside = false;
  for (const auto& e : std::filesystem::directory_iterator(dir / "config"))
    aside |= e.path().filename().string().starts_with("state.json.damaged-");
  CHECK(aside);
}

TEST_CASE("config history: pruning keeps the newest texts and every one the state names",
          "[config][history]") {
  test::temp_dir dir;
  config_history h(dir / "config");
  history_state st;
  st.confirmed = rev('0');
  h.keep_text(rev('0'), "[gateway]\nid = \"zero\"\n", st, 2);
  for (char c : std::string("123")) {
    // Distinct modification times: the order kept() reports.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    h.keep_text(rev(c), std::string("# ") + c + "\n", st, 2);
  }
  const auto kept = h.kept();
  // The two newest, and the confirmed one though it is the oldest.
  REQUIRE(kept.size() == 3);
  CHECK(kept[0] == rev('3'));
  CHECK(kept[1] == rev('2'));
  CHECK(kept[2] == rev('0'));
  CHECK(h.text_of(rev('0')) == "[gateway]\nid = \"zero\"\n");
  CHECK_FALSE(h.text_of(rev('1')));
  // Only a revision's name is a file name here.
  CHECK_FALSE(h.text_of("../state"));
  CHECK_THROWS_AS(h.keep_text("../../etc/passwd", "x", st), history_error);
}

TEST_CASE("config history: a folder that cannot be written is an error naming it", "[config][history]") {
  test::temp_dir dir;
  {
    std::ofstream out(dir / "file");
    out << "not a folder";
  }
  config_history h(dir / "file" / "config");
  try {
    h.save(history_state{});
    FAIL("saved into a folder under a file");
  } catch (const history_error& e) {
    CHECK(std::string(e.what()).find((dir / "file").string()) != std::string::npos);
  }
}

TEST_CASE("config history: a missing parent folder (a missing mount) is not made", "[config][history]") {
  test::temp_dir dir;
  config_history h(dir / "missing" / "config");
  CHECK_THROWS_AS(h.save(history_state{}), history_error);
  // Made, it would hide the missing mount from the store, which must find its folder gone.
  CHECK_FALSE(std::filesystem::exists(dir / "missing"));
}
