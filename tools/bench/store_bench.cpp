// Store benchmark: sustained readings per second into the store in flush-sized batches (one
// transaction each, synchronous=FULL, WAL, as the daemon writes them), with and without their
// telemetry outbox items, and the bytes a stored reading takes on disk, indexes included.
// Usage: store_bench [--readings N] [--batch B] [--devices D] [--dir DIR]; prints one JSON object.
//        store_bench --open DB: times opening DB, the migration to this build's schema included.
//        store_bench --fill DB --readings N [--gateway ID --topic T]: leaves a backlog of N undelivered
//        readings in DB, as a daemon whose uplink was down would have (tools/bench/store_drain.py).

#include "store/store.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <random>

using namespace firegate;
namespace fs = std::filesystem;

namespace {

std::uintmax_t size_on_disk(const fs::path& db) {
  std::uintmax_t total = 0;
  for (const char* suffix : {"", "-wal"}) {
    std::error_code ec;
    const auto n = fs::file_size(db.string() + suffix, ec);
    if (!ec) total += n;
  }
  return total;
}

/// A fleet's second of SD-1 polls: four points a device, values as they drift.
std::vector<reading> batch_of(std::size_t devices, std::size_t size, clock::time_point t,
                              std::mt19937& random) {
  static const char* points[] = {"state", "smoke", "temperature", "supply_voltage"};
  static const char* units[] = {"", "dB/m", "°C", "V"};
  std::uniform_int_distribution<int> noise(-3, 3);
  std::vector<reading> out;
  out.reserve(size);
  for (std::size_t i = 0; out.size() < size; ++i) {
    const auto device = fmt::format("smoke-{:04}", i % devices);
    const auto at = t + std::chrono::milliseconds(i / devices);
    for (int p = 0; p < 4 && out.size() < size; ++p) {
      const double value = p == 0   ? 0
                           : p == 1 ? 0.02 + noise(random) * 0.01
                           : p == 2 ? 21.5 + noise(random) * 0.1
                                    : 24.0 + noise(random) * 0.01;
      out.push_back({device, points[p], value, units[p], quality::good, at});
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"store_bench: readings per second into firegate's store, and bytes per reading"};
  std::size_t total = 1'000'000, batch = 4000, devices = 1000;
  std::string dir = fs::temp_directory_path() / "firegate-store-bench";
  cli.add_option("--readings", total, "readings to write")->capture_default_str();
  cli.add_option("--batch", batch, "readings a transaction (a flush)")->capture_default_str();
  cli.add_option("--devices", devices, "distinct devices (4 points each)")->capture_default_str();
  cli.add_option("--dir", dir, "where the database goes (removed first)")->capture_default_str();
  std::string fill, topic = "firegate/site/gw-bench/telemetry";
  cli.add_option("--fill", fill, "write a backlog into this database and stop");
  cli.add_option("--topic", topic, "the telemetry topic of a --fill backlog")->capture_default_str();
  std::size_t damage_events = 0;
  cli.add_option("--damage-events", damage_events,
                 "time the open (integrity check) of a file of --readings readings and this many events, and "
                 "its replacement as if damaged (salvage of every event and undelivered message)");
  std::string open_only;
  cli.add_option("--open", open_only,
                 "time opening this database (its migration to this build's schema included) and stop");
  CLI11_PARSE(cli, argc, argv);

  std::mt19937 random(7);
  if (!open_only.empty()) {
    const auto from = std::chrono::steady_clock::now();
    store s(open_only);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - from).count();
    std::cout << fmt::format(
                     R"({{"opened": "{}", "schema": {}, "open_s": {:.2f}, "readings": {}, "outbox": {}}})",
                     open_only, s.user_version(), seconds, s.reading_count(), s.outbox_depth())
              << "\n";
    return 0;
  }
  if (!fill.empty()) {
    store s(fill);
    // Readings a second old, then older: a backlog from before the uplink went down.
    auto t = clock::now() - std::chrono::seconds(total / batch + 1);
    for (std::size_t written = 0; written < total; written += batch) {
      s.append_telemetry(batch_of(devices, std::min(batch, total - written), t, random), topic);
      t += std::chrono::seconds(1);
    }
    std::cout << fmt::format(R"({{"filled": "{}", "readings": {}, "outbox": {}}})", fill, total,
                             s.outbox_depth())
              << "\n";
    return 0;
  }
  fs::remove_all(dir);
  fs::create_directories(dir);
  if (damage_events > 0) {
    const auto path = (fs::path(dir) / "damage.db").string();
    {
      store s(path);
      auto t = clock::now() - std::chrono::seconds(total / batch + 1);
      for (std::size_t written = 0; written < total; written += batch) {
        s.append_telemetry(batch_of(devices, std::min(batch, total - written), t, random), topic);
        t += std::chrono::seconds(1);
      }
      for (std::size_t i = 0; i < damage_events; ++i) {
        event e;
        e.id = fmt::format("bench-{}", i);
        e.seq = s.next_event_seq();
        e.kind = i % 2 == 0 ? event_kind::fire_alarm : event_kind::fire_recovery;
        e.device = fmt::format("smoke-{}", i % devices);
        e.point = "state";
        e.time = clock::now();
        e.detail = "detector reports fire";
        s.record_event(e, lane::alarm, "firegate/site/gw-bench/alarm", std::string(600, 'p'));
      }
    }
    const auto timed = [](auto&& f) {
      const auto started = std::chrono::steady_clock::now();
      f();
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    };
    std::unique_ptr<store> s;
    const auto open_s = timed([&] { s = std::make_unique<store>(path); });
    salvage_report r;
    const auto replace_s = timed([&] { r = s->replace_damaged(); });
    std::cout
        << fmt::format(
               R"({{"readings": {}, "events": {}, "file_mib": {:.1f}, "open_with_check_s": {:.3f}, "integrity_note": "{}", "replace_s": {:.3f}, "events_carried": {}, "messages_carried": {}}})",
               total, damage_events,
               static_cast<double>(size_on_disk(s->moved_aside()->moved_to)) / (1 << 20), open_s,
               s->integrity_note(), replace_s, r.events, r.messages)
        << "\n";
    fs::remove_all(dir);
    return 0;
  }
  auto run = [&](const std::string& name, bool with_messages) {
    const auto path = fs::path(dir) / (name + ".db");
    double seconds = 0;
    std::size_t messages = 0;
    std::uintmax_t empty_size = 0;
    {
      store s(path.string());
      s.append_readings({});
      empty_size = size_on_disk(path);
      auto t = clock::now();
      for (std::size_t written = 0; written < total; written += batch) {
        auto readings = batch_of(devices, std::min(batch, total - written), t, random);
        t += std::chrono::seconds(1);
        const auto started = std::chrono::steady_clock::now();
        s.append_telemetry(readings, with_messages ? topic : std::string());
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      }
      messages = s.outbox_depth();
    }
    // Reopen to checkpoint the WAL into the main file, then measure it.
    { store s(path.string()); }
    const auto bytes = size_on_disk(path) - empty_size;
    return fmt::format(
        R"("{}": {{"readings": {}, "batch": {}, "seconds": {:.2f}, "readings_per_s": {:.0f}, "messages": {}, "bytes_per_reading": {:.1f}}})",
        name, total, batch, seconds, static_cast<double>(total) / seconds, messages,
        static_cast<double>(bytes) / static_cast<double>(total));
  };
  const auto readings_only = run("readings", false);
  const auto with_telemetry = run("readings_and_telemetry", true);
  std::cout << "{" << readings_only << ", " << with_telemetry << "}\n";
  fs::remove_all(dir);
  return 0;
}
