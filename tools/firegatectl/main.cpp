// firegatectl: the technician's CLI. Talks to a running firegated over its control socket
// (docs/control-api.md); `config check` and `gb26875 decode` need no daemon. docs/firegatectl.md is its
// manual.

#include "client.hpp"
#include "direct.hpp"
#include "gb26875.hpp"
#include "modbus/modbus_error.hpp"
#include "render.hpp"

#include "config/config_loader.hpp"
#include "domain/time_text.hpp"
#include "driver.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <tuple>

namespace {
using json = nlohmann::json;
using namespace firegatectl;

/// An export's end: ISO 8601 with its offset, a time ago (90s, 30m, 12h, 7d) or now.
std::optional<std::chrono::system_clock::time_point> to_time(const std::string& when) {
  if (when.empty()) return std::nullopt;
  std::time_t t = std::time(nullptr);
  if (when != "now") {
    if (when.find('T') != std::string::npos) return firegate::parse_iso8601(when);
    std::size_t used = 0;
    long n = 0;
    try {
      n = std::stol(when, &used);
    } catch (const std::exception&) {
      return std::nullopt;
    }
    const auto unit = when.substr(used);
    const long scale = unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : unit == "d" ? 86400 : 0;
    if (scale == 0 || n < 0) return std::nullopt;
    t -= n * scale;
  }
  return std::chrono::system_clock::from_time_t(t);
}

/// A CSV field: quoted when it holds a comma, a quote or a line break (RFC 4180).
std::string csv(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + '"';
}

struct options {
  std::string socket;
  bool json_out{false};
};

/// Prints a refusal and returns its exit code.
int refused_with(const json& answer, const options& o) {
  if (o.json_out) {
    std::cout << answer.dump(2) << '\n';
  } else {
    std::cerr << "firegatectl: " << answer.value("error", std::string("refused")) << '\n';
  }
  return code_of(answer);
}

/// "300", "0x012C" or "0b101": a number 0–max.
std::optional<long> number(const std::string& s, long max) {
  try {
    std::size_t used = 0;
    const int base = s.starts_with("0b") ? 2 : 0;
    const auto v = std::stol(base == 2 ? s.substr(2) : s, &used, base);
    if (used != s.size() - (base == 2 ? 2 : 0) || v < 0 || v > max) return std::nullopt;
    return v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

/// The options of read, write and scan: a bus of the daemon, or a line of firegatectl's own.
struct line_options {
  std::string bus;
  firegatectl::direct_line direct;
  bool force{false};
  std::string unit = "1", table = "holding", address, count = "1";
  std::vector<std::string> values;
  int from{1}, to{32};
  std::string profiles;
};

void add_line_options(CLI::App* sub, line_options& l) {
  auto* bus =
      sub->add_option("-b,--bus", l.bus, "a bus of the running firegated (firegatectl status lists them)");
  auto* direct =
      sub->add_option("--direct", l.direct.target,
                      "HOST:PORT or a serial device (/dev/ttyUSB0): open the line itself, only while "
                      "firegated is stopped");
  bus->excludes(direct);
  sub->add_option("--baud", l.direct.baud, "with --direct on a serial line")->capture_default_str();
  sub->add_option("--parity", l.direct.parity, "with --direct on a serial line: N, E or O")
      ->capture_default_str();
  sub->add_option("--stop-bits", l.direct.stop_bits, "with --direct on a serial line")
      ->check(CLI::Range(1, 2));
  sub->add_option("--timeout-ms", l.direct.timeout,
                  "with --direct: per request (through the daemon: the bus's)")
      ->check(CLI::Range(20, 60000));
  sub->add_flag("--force", l.force,
                "with --direct: open the line even though firegated answers; with --bus, on a write: "
                "switch an output that open alarms hold through the site's linkage (logged and reported)");
}

/// Before opening a line directly: the daemon must not be polling it.
std::optional<int> refuse_direct(const options& o, const line_options& l) {
  if (l.force) return std::nullopt;
  if (l.direct.target.starts_with("/") && serial_line_held(l.direct.target)) {
    std::cerr
        << "firegatectl: " << l.direct.target
        << ": the serial line is held by another master (a running firegated polling it, or another "
           "program): go through firegated with --bus NAME, or stop it; --force opens the line anyway\n";
    return exit_code::refused;
  }
  try {
    client c(o.socket);
  } catch (const failure& f) {
    if (f.code() == exit_code::unreachable) return std::nullopt;  // stopped: the line is ours
  }
  std::cerr << "firegatectl: firegated is running (" << o.socket
            << "): go through it with --bus NAME, so that these requests do not collide with its polling on "
               "the line; --force opens the line anyway (only for a line it does not poll)\n";
  return exit_code::refused;
}

int print_registers(const options& o, const json& r) {
  if (o.json_out) {
    std::cout << r.dump(2) << '\n';
    return exit_code::ok;
  }
  const bool bits = field(r, "table") == "coil" || field(r, "table") == "discrete";
  const auto first = field(r, "address").get<long>();
  if (r.value("written", false)) {
    std::cout << fmt::format("written: unit {} {} from {} ({} value(s)), {:.1f} ms\n", text(field(r, "unit")),
                             text(field(r, "table")), first, field(r, "values").size(), r.value("ms", 0.0));
    return exit_code::ok;
  }
  std::cout << fmt::format("unit {} {} from 0x{:04X} ({}), {:.1f} ms\n", text(field(r, "unit")),
                           text(field(r, "table")), first, first, r.value("ms", 0.0));
  table t = bits ? table({"ADDRESS", "VALUE"}) : table({"ADDRESS", "HEX", "UNSIGNED", "SIGNED"});
  long a = first;
  for (const auto& v : field(r, "values")) {
    const auto u = v.get<std::uint16_t>();
    if (bits) {
      t.add({fmt::format("0x{:04X} ({})", a, a), u ? "1 (on)" : "0 (off)"});
    } else {
      t.add({fmt::format("0x{:04X} ({})", a, a), fmt::format("0x{:04X}", u), std::to_string(u),
             std::to_string(static_cast<std::int16_t>(u))});
    }
    ++a;
  }
  t.print(std::cout);
  return exit_code::ok;
}

/// read and write: through the daemon's bus, or on a line of firegatectl's own.
int run_registers(const options& o, line_options& l, bool write) {
  if (write && (l.table == "input" || l.table == "discrete")) {
    std::cerr << "firegatectl: " << firegate::modbus::read_only_table(l.table) << '\n';
    return exit_code::usage;
  }
  const auto unit = number(l.unit, 247), address = number(l.address, 65535), count = number(l.count, 2000);
  if (!unit || *unit < 1 || !address || !count || *count < 1) {
    std::cerr << "firegatectl: --unit takes 1–247, --address 0–65535 and --count 1–2000 (decimal, or hex as "
                 "0x0010)\n";
    return exit_code::usage;
  }
  std::vector<std::uint16_t> values;
  for (const auto& v : l.values) {
    const auto n = number(v, 65535);
    if (!n) {
      std::cerr << "firegatectl: a register holds 0–65535 (or 0x0000–0xFFFF), not " << v << '\n';
      return exit_code::usage;
    }
    values.push_back(static_cast<std::uint16_t>(*n));
  }
  if (!l.bus.empty()) {
    json args{{"bus", l.bus}, {"unit", *unit}, {"table", l.table}, {"address", *address}, {"count", *count}};
    if (write) args["values"] = values;
    if (write && l.force) args["force"] = true;
    client c(o.socket);
    const auto answer = c.request(write ? "write" : "read", args);
    if (!answer.value("ok", false)) return refused_with(answer, o);
    return print_registers(o, answer["result"]);
  }
  if (l.direct.target.empty()) {
    std::cerr
        << "firegatectl: give --bus NAME (through firegated) or --direct HOST:PORT|/dev/tty... (firegated "
           "stopped)\n";
    return exit_code::usage;
  }
  if (auto refused_code = refuse_direct(o, l)) return *refused_code;
  l.direct.force = l.force;
  firegate::register_request r;
  r.unit = static_cast<std::uint8_t>(*unit);
  r.table = l.table;
  r.address = static_cast<std::uint16_t>(*address);
  r.count = static_cast<std::uint16_t>(*count);
  if (write) r.values = values;
  const auto reply = direct_transact(l.direct, r);
  if (reply.error) {
    // A Modbus error names itself; a line that cannot be reached needs a hint.
    const bool line_error = reply.error.category() != firegate::modbus::modbus_category();
    const json refusal{
        {"ok", false},
        {"code", "failed"},
        {"error", fmt::format("{} unit {} {} {}: {}{}", l.direct.target, r.unit, r.table, r.address,
                              reply.detail.empty() ? reply.error.message() : reply.detail,
                              reply.error == firegate::modbus::modbus_errc::line_held
                                  ? "; go through firegated with --bus NAME, or stop it; --force opens the "
                                    "line anyway"
                              : line_error ? "; check the address or device, the cable, and that "
                                             "the device or server is powered"
                                           : "")}};
    return refused_with(refusal, o);
  }
  return print_registers(o, {{"unit", r.unit},
                             {"table", r.table},
                             {"address", r.address},
                             {"values", write ? values : reply.values},
                             {"written", write},
                             {"ms", static_cast<double>(reply.time.count()) / 1000.0}});
}

int run_scan(const options& o, line_options& l) {
  if (l.from < 1 || l.to > 247 || l.from > l.to) {
    std::cerr << "firegatectl: scan units 1–247, --from before --to\n";
    return exit_code::usage;
  }
  const auto show = [&](const json& u) {
    if (o.json_out) {
      std::cout << u.dump() << '\n' << std::flush;
    } else if (u.value("answered", false)) {
      std::cout << fmt::format("unit {:>3}  {}{}\n", text(field(u, "unit")), text(field(u, "detail")),
                               u.contains("configured")
                                   ? fmt::format("  (configured: {})", text(field(u, "configured")))
                                   : std::string())
                << std::flush;
    }
  };
  std::size_t answered = 0;
  if (!l.bus.empty()) {
    client c(o.socket);
    if (!o.json_out)
      std::cerr << fmt::format("scanning bus {} units {}–{} between the daemon's polls...\n", l.bus, l.from,
                               l.to);
    const auto answer =
        c.request("scan", {{"bus", l.bus}, {"from", l.from}, {"to", l.to}}, [&](const json& line) {
          if (!line.contains("scanned")) return;
          answered += field(line, "scanned").value("answered", false);
          show(field(line, "scanned"));
        });
    if (!answer.value("ok", false)) return refused_with(answer, o);
  } else {
    if (l.direct.target.empty()) {
      std::cerr << "firegatectl: give --bus NAME (through firegated) or --direct HOST:PORT|/dev/tty...\n";
      return exit_code::usage;
    }
    if (auto refused_code = refuse_direct(o, l)) return *refused_code;
    l.direct.force = l.force;
    std::string errors;
    // No --profiles: FIREGATE_PROFILES, or the installed folder (from a build folder, the source tree's).
    auto library =
        shipped_profiles(l.profiles.empty() ? firegate::modbus::default_profiles_dir() : l.profiles, errors);
    if (!errors.empty()) std::cerr << errors;
    if (!o.json_out)
      std::cerr << fmt::format("scanning {} units {}–{}, {} ms a unit that does not answer...\n",
                               l.direct.target, l.from, l.to, l.direct.timeout.count());
    direct_scan(l.direct, l.from, l.to, library, [&](const firegate::unit_identity& u) {
      answered += u.answered;
      show({{"unit", u.unit}, {"answered", u.answered}, {"profiles", u.profiles}, {"detail", u.detail}});
    });
  }
  if (!o.json_out) std::cout << fmt::format("{} of {} units answered\n", answered, l.to - l.from + 1);
  return exit_code::ok;
}

/// One request, its answer printed by `print` (or as JSON).
int simple(const options& o, const std::string& command, const json& args,
           const std::function<void(const json&)>& print) {
  client c(o.socket);
  const auto answer = c.request(command, args);
  if (!answer.value("ok", false)) return refused_with(answer, o);
  if (o.json_out) {
    std::cout << answer["result"].dump(2) << '\n';
  } else {
    print(answer["result"]);
  }
  return exit_code::ok;
}

int run_export(const options& o, const json& args, const std::string& output) {
  // Nothing is written, not even the header or an empty file, until the daemon has taken the
  // request: a refusal leaves no half-made output behind. Where the file goes is checked first.
  const bool to_file = !output.empty() && output != "-";
  if (to_file) {
    const auto folder = std::filesystem::path(output).parent_path();
    const auto checked = std::filesystem::exists(output) ? std::filesystem::path(output)
                         : folder.empty()                ? std::filesystem::path(".")
                                                         : folder;
    if (::access(checked.c_str(), W_OK) != 0) {
      throw failure(refused, fmt::format("cannot write --output {}: {} ({})", output, std::strerror(errno),
                                         checked.string()));
    }
  }
  std::ofstream file;
  bool started = false;
  const auto start = [&]() -> std::ostream& {
    if (!started) {
      started = true;
      if (to_file) {
        file.open(output);
        if (!file) throw failure(refused, fmt::format("cannot write --output {}", output));
      }
      if (!o.json_out)
        (to_file ? static_cast<std::ostream&>(file) : std::cout) << "time,device,point,value,unit,quality\n";
    }
    return to_file ? static_cast<std::ostream&>(file) : std::cout;
  };
  client c(o.socket);
  const auto answer = c.request("export", args, [&](const json& line) {
    if (!line.contains("rows")) return;
    std::ostream& out = start();
    for (const auto& r : field(line, "rows")) {
      if (!r.is_array() || r.size() != 6) continue;  // not a row this version knows
      if (o.json_out) {
        out << r.dump() << '\n';
      } else {
        out << csv(r[0].get<std::string>()) << ',' << csv(r[1].get<std::string>()) << ','
            << csv(r[2].get<std::string>()) << ',' << text(r[3]) << ',' << csv(r[4].get<std::string>()) << ','
            << r[5].get<std::string>() << '\n';
      }
    }
  });
  if (!answer.value("ok", false)) return refused_with(answer, o);
  start();  // an empty window still gives the header
  if (to_file) {
    std::cerr << fmt::format("{} readings written to {}\n", text(field(answer["result"], "rows")), output);
  }
  return exit_code::ok;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{
      "firegatectl: inspect and commission a firegate gateway.\n"
      "Talks to the running firegated over its control socket; members of the group firegate-operators may "
      "use it.\n"
      "Exit codes: 0 done, 1 refused or failed, 2 wrong usage, 3 firegated not running, 4 permission "
      "denied, 5 timed out.",
      "firegatectl"};  // named, so that the help's usage lines never show the path it was run from
  cli.set_version_flag("-V,--version", std::string("firegatectl ") + FIREGATE_VERSION);
  cli.require_subcommand(1);
  options o;
  const char* env_socket = std::getenv("FIREGATE_SOCKET");
  o.socket = env_socket && *env_socket ? env_socket : "/run/firegate/control.sock";
  cli.add_option("-s,--socket", o.socket, "firegated's control socket (env FIREGATE_SOCKET)")
      ->capture_default_str();
  cli.add_flag("-j,--json", o.json_out, "print the daemon's answers as JSON, for scripts");

  auto* status =
      cli.add_subcommand("status", "the gateway at a glance: uplink, storage, buses, devices, alarms");
  auto* devices = cli.add_subcommand("devices", "every device: model, bus, state, counters");
  auto* device = cli.add_subcommand("device", "one device: its last values, counters and open alarms");
  std::string device_name;
  device->add_option("name", device_name, "the device's name")->required();

  auto* alarms = cli.add_subcommand("alarms", "open alarms, shields and test modes (or --history)");
  bool history = false;
  std::string alarm_device;
  int limit = 50;
  alarms->add_flag("--history", history, "stored events, newest first");
  alarms->add_option("-d,--device", alarm_device, "only this device's");
  alarms->add_option("-n,--limit", limit, "events at most, with --history")->check(CLI::Range(1, 10000));

  std::string by;
  auto* ack = cli.add_subcommand("ack", "acknowledge an open alarm on site");
  std::string alarm_id, verdict;
  ack->add_option(
         "alarm_id", alarm_id,
         "the alarm's id, or the first characters of it that no other alarm's id, open or past, starts with "
         "(at least 4; firegatectl alarms shows 8)")
      ->required();
  // Said each time: a verdict counts toward the false-alarm statistics (--verdict for scripts).
  const auto verdicts = CLI::IsMember({"real", "false", "test"});
  ack->add_option("verdict", verdict, "what it was: real, false or test")->check(verdicts);
  ack->add_option("--verdict", verdict, "the same, as an option")->check(verdicts);
  auto* shield = cli.add_subcommand("shield", "disable a device's alarms for a time, with a reason");
  std::string shield_device, reason;
  int minutes = 60;
  shield->add_option("device", shield_device, "the device")->required();
  shield->add_option("-m,--minutes", minutes, "how long")
      ->check(CLI::Range(1, 7 * 24 * 60))
      ->capture_default_str();
  shield->add_option("-r,--reason", reason, "why (kept in the event)")->required();
  auto* unshield = cli.add_subcommand("unshield", "lift a device's shield");
  unshield->add_option("device", shield_device, "the device")->required();
  auto* test_mode = cli.add_subcommand("test-mode", "a device's alarms marked test while it is maintained");
  std::string on_off;
  test_mode->add_option("device", shield_device, "the device")->required();
  test_mode->add_option("state", on_off, "on or off")->required()->check(CLI::IsMember({"on", "off"}));
  test_mode->add_option("-m,--minutes", minutes, "how long, when on")->check(CLI::Range(1, 24 * 60));
  auto* test_alarm = cli.add_subcommand(
      "test-alarm", "raise a test alarm end to end and wait for the platform's acknowledgement");
  int wait_s = 120;
  test_alarm->add_option("-w,--wait", wait_s, "seconds to wait")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  for (auto* sub : {ack, shield, unshield, test_mode, test_alarm}) {
    sub->add_option("--by", by, "who is acting (default: SUDO_USER under sudo, else your login)");
  }

  auto* tail = cli.add_subcommand("tail", "readings and events as they happen (Ctrl-C ends)");
  std::string tail_device;
  bool no_readings = false, no_events = false;
  tail->add_option("-d,--device", tail_device, "only this device");
  tail->add_flag("--no-readings", no_readings, "events only");
  tail->add_flag("--no-events", no_events, "readings only");

  auto* exp =
      cli.add_subcommand("export", "readings of a time window as CSV (time,device,point,value,unit,quality)");
  std::string from, to = "now", export_device, output;
  exp->add_option("--from", from, "ISO 8601 with offset, or a time ago: 90s, 30m, 12h, 7d")->required();
  exp->add_option("--to", to, "the same; default now")->capture_default_str();
  exp->add_option("-d,--device", export_device, "only this device");
  exp->add_option("-o,--output", output, "a file instead of standard output");

  line_options regs;
  auto* read = cli.add_subcommand("read", "read raw registers or coils of a unit on a bus");
  auto* write =
      cli.add_subcommand("write", "write raw registers or coils (the profiles' checks do not apply)");
  for (auto* sub : {read, write}) {
    add_line_options(sub, regs);
    sub->add_option("-u,--unit", regs.unit, "the unit id, 1–247")->capture_default_str();
    sub->add_option("-t,--table", regs.table, "holding, input, coil or discrete")
        ->check(CLI::IsMember({"holding", "input", "coil", "discrete"}))
        ->capture_default_str();
    sub->add_option("-a,--address", regs.address, "the first register (decimal, or hex as 0x0010)")
        ->required();
  }
  read->add_option("-c,--count", regs.count, "how many")->capture_default_str();
  write->add_option("values", regs.values, "the values, in order (coils: 0 or 1)")->required();
  auto* scan =
      cli.add_subcommand("scan", "which units answer on a bus, and which shipped profile each looks like");
  add_line_options(scan, regs);
  scan->add_option("--from", regs.from, "first unit")->capture_default_str();
  scan->add_option("--to", regs.to, "last unit")->capture_default_str();
  // The help shows where an installed firegatectl looks, never the folder it was built in.
  scan->add_option("--profiles", regs.profiles,
                   "with --direct: the profiles folder (modbus/*.toml); default $FIREGATE_PROFILES, "
                   "else " FIREGATE_SHIPPED_PROFILES);

  auto* metrics = cli.add_subcommand(
      "metrics", "every counter in Prometheus's text format, as the [metrics] endpoint serves it");

  auto* config = cli.add_subcommand("config", "configuration commands");
  config->require_subcommand(1);
  std::string path = "/etc/firegate/firegate.toml";
  auto* check = config->add_subcommand(
      "check", "validate a configuration file and list every error (no daemon needed)");
  check->add_option("file", path, "configuration file")->capture_default_str();
  auto* show = config->add_subcommand(
      "show", "the running daemon's configuration, defaults included, secrets redacted");
  auto* config_history = config->add_subcommand(
      "history", "changes from the platform (applied, confirmed, rolled back) and the revisions kept");
  std::string revision;
  auto* rollback = config->add_subcommand(
      "rollback", "put back a kept revision at once, as confirmed (\"site\": the site file)");
  rollback->add_option("revision", revision, "a kept revision (its first digits), or \"site\"")->required();

  auto* gb =
      cli.add_subcommand("gb26875", "GB/T 26875.3: decode a captured frame, answer an inspection check");
  gb->require_subcommand(1);
  std::vector<std::string> frame_hex;
  auto* gb_decode = gb->add_subcommand(
      "decode",
      "captured frames field by field, or what is wrong with them: one frame in hex on the command line, or "
      "every frame of a file (hex lines or a raw capture; '-' reads standard input)");
  gb_decode->add_option("hex", frame_hex, "one frame's bytes in hex (40 40 02 00 ...)");
  std::string frames_file;
  gb_decode->add_option("-f,--file", frames_file,
                        "a file of frames: hex lines, or the raw bytes of a capture");
  unsigned duty_operator = 0;
  auto* gb_answer = gb->add_subcommand(
      "answer", "answer the monitoring centre's inspection check as the duty person (within 10 minutes)");
  gb_answer->add_option("--operator", duty_operator, "the duty person's operator number (0-255)")
      ->capture_default_str()
      ->check(CLI::Range(0, 255));

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = cli.exit(e);
    return rc == 0 ? 0 : exit_code::usage;
  }

  try {
    if (gb_decode->parsed()) {
      // A file or standard input holds any number of frames; the command line, one.
      if (!frames_file.empty()) {
        if (frames_file == "-") return gb26875_decode_stream(std::cin, o.json_out, std::cout, std::cerr);
        std::ifstream in(frames_file, std::ios::binary);
        if (!in) {
          std::cerr << "firegatectl: cannot read --file " << frames_file << ": " << std::strerror(errno)
                    << '\n';
          return exit_code::usage;
        }
        return gb26875_decode_stream(in, o.json_out, std::cout, std::cerr);
      }
      if (frame_hex.size() == 1 && frame_hex[0] == "-")
        return gb26875_decode_stream(std::cin, o.json_out, std::cout, std::cerr);
      if (frame_hex.empty()) {
        std::cerr
            << "firegatectl: give the frame's bytes in hex, or --file FILE (hex lines or a raw capture; - "
               "for standard input)\n";
        return exit_code::usage;
      }
      std::string text;
      for (const auto& part : frame_hex) text += part + " ";
      return gb26875_decode(text, o.json_out, std::cout, std::cerr);
    }
    if (gb_answer->parsed()) {
      return simple(o, "gb26875_answer", {{"operator", duty_operator}}, [](const json&) {
        std::cout << "inspection check answered: the centre is told someone is on duty\n";
      });
    }
    if (check->parsed()) {
      auto loaded = firegate::config::load_config_file(path, firegate::driver_parsers());
      if (!loaded.config) {
        std::cerr << loaded.error_text() << loaded.errors.size() << " error(s) in " << path << "\n";
        return exit_code::refused;
      }
      for (const auto& w : firegate::config::config_warnings(*loaded.config))
        std::cout << path << ":" << w.line << " " << w.path << ": warning: " << w.message << "\n";
      std::cout << path << ": configuration is valid\n";
      return exit_code::ok;
    }
    if (config_history->parsed())
      return simple(o, "config_history", json::object(),
                    [](const json& r) { print_config_history(r, std::cout); });
    if (rollback->parsed()) {
      return simple(o, "config_rollback", {{"revision", revision}}, [](const json& r) {
        std::cout << "configuration " << text(field(r, "revision")).substr(0, 12)
                  << " is in force in place of " << text(field(r, "previous")).substr(0, 12) << "\n";
      });
    }
    if (status->parsed())
      return simple(o, "status", json::object(), [](const json& r) { print_status(r, std::cout); });
    if (devices->parsed())
      return simple(o, "devices", json::object(), [](const json& r) { print_devices(r, std::cout); });
    if (device->parsed()) {
      return simple(o, "device", {{"name", device_name}}, [](const json& r) { print_device(r, std::cout); });
    }
    if (alarms->parsed()) {
      json args{{"history", history}, {"limit", limit}};
      if (!alarm_device.empty()) args["device"] = alarm_device;
      return simple(o, "alarms", args, [&](const json& r) {
        if (history) {
          print_history(field(r, "history"), std::cout);
        } else {
          print_alarms(field(r, "open"), std::cout);
        }
      });
    }
    const auto print_events = [](const json& r) {
      for (const auto& e : field(r, "events")) {
        std::cout << fmt::format("{}  {}  {}\n", text(field(e, "type")), text(field(e, "device")),
                                 text(field(e, "detail")));
      }
      if (field(r, "events").empty()) std::cout << "done\n";
    };
    // Under sudo the person is SUDO_USER; the daemon adds the login the kernel reports (root).
    if (const char* sudo_user = std::getenv("SUDO_USER"); by.empty() && sudo_user != nullptr) by = sudo_user;
    json actor = by.empty() ? json::object() : json{{"by", by}};
    if (ack->parsed()) {
      if (verdict.empty()) {
        std::cerr << "firegatectl: say what the alarm was: firegatectl ack " << alarm_id
                  << " real|false|test (a verdict counts toward the device's false-alarm statistics, so "
                     "it is never assumed)\n";
        return exit_code::usage;
      }
      auto args = actor;
      args.update({{"alarm_id", alarm_id}, {"verdict", verdict}});
      return simple(o, "ack", args, print_events);
    }
    if (shield->parsed()) {
      auto args = actor;
      args.update({{"device", shield_device}, {"minutes", minutes}, {"reason", reason}});
      return simple(o, "shield", args, print_events);
    }
    if (unshield->parsed()) {
      auto args = actor;
      args["device"] = shield_device;
      return simple(o, "unshield", args, print_events);
    }
    if (test_mode->parsed()) {
      auto args = actor;
      args.update({{"device", shield_device}, {"on", on_off == "on"}, {"minutes", minutes}});
      return simple(o, "test_mode", args, print_events);
    }
    if (test_alarm->parsed()) {
      auto args = actor;
      args["wait_s"] = wait_s;
      client c(o.socket);
      const auto answer = c.request("test_alarm", args, [&](const json& line) {
        if (o.json_out) {
          std::cout << line.dump() << '\n' << std::flush;
        } else if (line.contains("progress")) {
          const auto& p = field(line, "progress");
          std::cout << fmt::format(
                           "test alarm {} raised; waiting up to {} s for the platform's acknowledgement{}\n",
                           text(field(p, "alarm_id")), text(field(p, "wait_s")),
                           p.value("uplink_connected", false) ? "" : " (the uplink is DISCONNECTED now)")
                    << std::flush;
        }
      });
      if (!answer.value("ok", false)) return refused_with(answer, o);
      const auto& r = answer["result"];
      if (o.json_out) {
        std::cout << r.dump() << '\n';
      } else {
        std::cout << fmt::format(
            "PASSED: the platform acknowledged test alarm {} after {:.1f} s (by {}, verdict {})\n",
            text(field(r, "alarm_id")), r.value("seconds", 0.0), text(field(r, "acknowledged_by")),
            text(field(r, "verdict")));
      }
      return exit_code::ok;
    }
    if (tail->parsed()) {
      json args{{"readings", !no_readings}, {"events", !no_events}};
      if (!tail_device.empty()) args["device"] = tail_device;
      client c(o.socket);
      const auto answer = c.request("tail", args, [&](const json& line) {
        if (o.json_out) {
          std::cout << line.dump() << '\n' << std::flush;
        } else {
          print_tail_line(line, std::cout);
        }
      });
      return refused_with(answer, o);  // a tail ends only when refused or the daemon stops
    }
    if (exp->parsed()) {
      const auto f = to_time(from), t = to_time(to);
      for (const auto& [name, given, parsed] : {std::tuple{"--from", from, f}, std::tuple{"--to", to, t}}) {
        if (parsed) continue;
        std::cerr << fmt::format(
            "firegatectl: {} \"{}\" is not a time: give an ISO 8601 time with its offset "
            "(2026-11-27T08:00:00+08:00), a time ago (90s, 30m, 12h, 7d) or now\n",
            name, given);
        return exit_code::usage;
      }
      if (*t <= *f) {
        std::cerr << fmt::format(
            "firegatectl: --from {} is not before --to {}: --from is the older end of the window (--from 2h "
            "--to 1h is the hour before the last)\n",
            firegate::iso8601(*f), firegate::iso8601(*t));
        return exit_code::usage;
      }
      json args{{"from", firegate::iso8601(*f)}, {"to", firegate::iso8601(*t)}};
      if (!export_device.empty()) args["device"] = export_device;
      return run_export(o, args, output);
    }
    if (read->parsed()) return run_registers(o, regs, false);
    if (write->parsed()) return run_registers(o, regs, true);
    if (scan->parsed()) return run_scan(o, regs);
    if (show->parsed())
      return simple(o, "config", json::object(), [](const json& r) { print_config(r, std::cout); });
    if (metrics->parsed()) {
      // The exposition itself, for promtool or a textfile collector; --json wraps it.
      return simple(o, "metrics", json::object(),
                    [](const json& r) { std::cout << r.at("text").get<std::string>(); });
    }
  } catch (const json::exception& e) {
    // An answer of another shape than this firegatectl knows (another version of firegated).
    std::cerr << "firegatectl: firegated's answer was not understood (" << e.what()
              << "); are firegatectl and firegated the same version?\n";
    return exit_code::refused;
  } catch (const failure& f) {
    if (o.json_out) {
      static const char* names[] = {"ok", "refused", "usage", "unreachable", "permission", "timeout"};
      std::cout << json{{"ok", false}, {"code", names[f.code()]}, {"error", f.what()}}.dump(2) << '\n';
    } else {
      std::cerr << "firegatectl: " << f.what() << '\n';
    }
    return f.code();
  }
  return exit_code::ok;
}
