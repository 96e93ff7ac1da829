// firegate-sim: the fleet simulator for the demo, the tests and the benchmarks. Serves devices of
// any shipped profile over Modbus TCP (one or many ports, MBAP or RTU framing) and Modbus RTU on a
// serial line, with firegate's own codec; on a serial line answers are paced as the baud rate allows
// (sim::line_pace). Values wander as real sensors do; changes come from a timed script (--script) or
// from standard input (--commands), and each is logged with a timestamp so latency can be measured
// from outside.
//
// Lines (a script's start with AT_SECONDS):
//   [PORT:]UNIT FIELD VALUE         set a point (engineering units) or a simulator field
//   [PORT:]UNIT FIELD invalid       set a point to its profile's no-value code (a probe open)
//   [PORT:]UNIT ramp POINT TO SECS  move a point to TO over SECS seconds (a leakage-current ramp)
// FIELD is a point or writable of the device's profile, or answering (0/1), delay_ms, corrupt
// (percent of answers corrupted), junk (percent of valid answers followed by stray bytes), strict (1: reading
// a reserved register is exception 2). PORT is the index of the --ports listener (default 0).
//
// With --mqtt HOST:PORT it publishes as wireless sensors of the MQTT profiles instead (sim_mqtt.hpp).

#include "sim_fleet.hpp"
#include "sim_log.hpp"
#include "sim_mqtt.hpp"

#include "modbus/codec/mbap.hpp"
#include "modbus/codec/rtu.hpp"
#include "modbus/modbus_error.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <boost/asio.hpp>

#include <unistd.h>
#include <charconv>
#include <cmath>
#include <deque>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
using namespace firegate;
using namespace std::chrono_literals;

namespace firegate::sim {

/// How a serial line paces what crosses it. A pty passes bytes at once, so without this an answer
/// would come back faster than any RS-485 line could carry it and a benchmark would measure the
/// CPU, not the bus. A character is 11 bits (start, 8 data, parity or a second stop bit, stop):
/// Modbus RTU specifies 11-bit characters (Serial Line V1.02 §2.5.1), and firegated's own frame
/// silence assumes them; an 8N1 line (10 bits) is a little faster than this models.
struct line_pace {
  std::chrono::microseconds char_time{0};   ///< one character at the line's baud rate; 0: no pacing
  std::chrono::microseconds silence{0};     ///< 3.5 characters: how a device knows a request ended
  std::chrono::microseconds turnaround{0};  ///< what the device takes from there to start answering
  bool on() const { return char_time.count() > 0; }
  std::chrono::microseconds of(std::size_t bytes) const {
    return char_time * static_cast<std::int64_t>(bytes);
  }
};

}  // namespace firegate::sim

namespace {

using sim::log_line;

struct change {
  double at{0};
  std::size_t port{0};
  std::uint8_t unit{0};
  std::string field;
  std::string value;         ///< a number, or "invalid"
  double to{0}, seconds{0};  ///< for ramp
};

/// Parses a script or command line. Returns an error text.
std::optional<std::string> parse_change(const std::string& line, bool timed, change& out) {
  std::istringstream in(line);
  std::string where;
  if (timed && !(in >> out.at)) return "expected seconds first";
  if (!(in >> where >> out.field)) return "expected [PORT:]UNIT FIELD VALUE";
  long port = 0, unit = 0;
  if (auto colon = where.find(':'); colon != std::string::npos) {
    auto [p, ec] = std::from_chars(where.data(), where.data() + colon, port);
    if (ec != std::errc{} || p != where.data() + colon)
      return "PORT:UNIT needs a port index before the colon";
    where.erase(0, colon + 1);
  }
  auto [p, ec] = std::from_chars(where.data(), where.data() + where.size(), unit);
  if (ec != std::errc{} || p != where.data() + where.size()) return "UNIT must be a number";
  if (unit < 1 || unit > 247) return "unit outside 1-247";
  out.port = static_cast<std::size_t>(port);
  out.unit = static_cast<std::uint8_t>(unit);
  if (out.field == "ramp") {
    if (!(in >> out.field >> out.to >> out.seconds)) return "expected UNIT ramp POINT TO SECONDS";
    out.value = "ramp";
    return std::nullopt;
  }
  if (!(in >> out.value)) return "expected a value";
  if (out.value != "invalid") {
    double v = 0;
    auto [q, ec2] = std::from_chars(out.value.data(), out.value.data() + out.value.size(), v);
    if (ec2 != std::errc{} || q != out.value.data() + out.value.size())
      return "VALUE must be a number or invalid";
  }
  return std::nullopt;
}

void apply_change(std::vector<sim::fleet>& fleets, const change& c) {
  if (c.port >= fleets.size()) {
    log_line(fmt::format("change rejected port={} error=\"only {} port(s)\"", c.port, fleets.size()));
    return;
  }
  auto& f = fleets[c.port];
  const auto now = sim::steady::now();
  std::optional<std::string> err;
  std::string what;
  if (c.value == "ramp") {
    err = f.ramp(c.unit, c.field, c.to, c.seconds, now);
    what = fmt::format("ramp {} to={} seconds={}", c.field, c.to, c.seconds);
  } else if (c.value == "invalid") {
    err = f.set_invalid(c.unit, c.field, now);
    what = fmt::format("{}=invalid", c.field);
  } else {
    err = f.set(c.unit, c.field, std::stod(c.value), now);
    what = fmt::format("{}={}", c.field, c.value);
  }
  const auto port = c.port == 0 ? std::string() : fmt::format("port={} ", c.port);
  if (err) {
    log_line(fmt::format("change rejected {}unit={} {} error=\"{}\"", port, c.unit, what, *err));
  } else {
    log_line(fmt::format("change {}unit={} {}", port, c.unit, what));
  }
}

/// Requests answered since the last stats line, over every port and the serial line.
std::uint64_t answered = 0;

/// Waits a device's configured answer delay.
awaitable<void> answer_delay(const sim::fleet& f, std::uint8_t unit) {
  const auto* d = f.find(unit);
  if (d == nullptr || d->delay == 0ms) co_return;
  asio::steady_timer timer(co_await asio::this_coro::executor, d->delay);
  co_await timer.async_wait(asio::use_awaitable);
}

/// What `junk` appends to a valid answer.
constexpr std::array<std::uint8_t, 7> stray_bytes{0x00, 0x55, 0xAA, 0x00, 0x00, 0x13, 0x37};

/// MBAP framing (Modbus TCP).
awaitable<void> serve_mbap(tcp::socket socket, sim::fleet& f) {
  std::array<std::uint8_t, modbus::mbap_header_size> header{};
  std::vector<std::uint8_t> pdu;
  for (;;) {
    co_await asio::async_read(socket, asio::buffer(header), asio::use_awaitable);
    auto h = modbus::decode_mbap(header);
    if (!h) co_return;  // not Modbus: drop the connection, as devices do
    pdu.resize(h->pdu_size());
    co_await asio::async_read(socket, asio::buffer(pdu), asio::use_awaitable);
    auto reply = f.answer(h->unit_id, pdu, sim::steady::now());
    if (!reply) continue;  // a dead device or nobody at that unit: no answer at all
    ++answered;
    co_await answer_delay(f, h->unit_id);
    // TCP has its own checksum; what a corrupting gateway does is answer with a broken length.
    if (f.corrupt(h->unit_id) && reply->size() >= 2) (*reply)[1] ^= 0x01;
    auto adu = modbus::encode_adu(h->transaction_id, h->unit_id, *reply);
    // A valid answer with stray bytes after it (a converter's echo, a noisy line): the master reads
    // them as the start of its next answer.
    if (f.junk(h->unit_id)) adu.insert(adu.end(), stray_bytes.begin(), stray_bytes.end());
    co_await asio::async_write(socket, asio::buffer(adu), asio::use_awaitable);
  }
}

/// A connection whose requests are answered concurrently, as a gateway with a serial port per
/// device does (--concurrent): answers go out in the order they are ready, one write at a time.
struct concurrent_connection {
  explicit concurrent_connection(tcp::socket s) : socket(std::move(s)) {}
  tcp::socket socket;
  std::deque<std::vector<std::uint8_t>> out;
  bool writing{false};
};

awaitable<void> answer_later(std::shared_ptr<concurrent_connection> c, sim::fleet& f, modbus::mbap_header h,
                             std::vector<std::uint8_t> pdu) {
  auto reply = f.answer(h.unit_id, pdu, sim::steady::now());
  if (!reply) co_return;
  ++answered;
  co_await answer_delay(f, h.unit_id);
  if (f.corrupt(h.unit_id) && reply->size() >= 2) (*reply)[1] ^= 0x01;
  c->out.push_back(modbus::encode_adu(h.transaction_id, h.unit_id, *reply));
  if (c->writing) co_return;  // the writer in progress sends it
  c->writing = true;
  try {
    while (!c->out.empty()) {
      auto adu = std::move(c->out.front());
      c->out.pop_front();
      co_await asio::async_write(c->socket, asio::buffer(adu), asio::use_awaitable);
    }
  } catch (const boost::system::system_error&) {
    c->out.clear();  // the master went away
  }
  c->writing = false;
}

awaitable<void> serve_mbap_concurrently(tcp::socket socket, sim::fleet& f) {
  auto c = std::make_shared<concurrent_connection>(std::move(socket));
  std::array<std::uint8_t, modbus::mbap_header_size> header{};
  for (;;) {
    co_await asio::async_read(c->socket, asio::buffer(header), asio::use_awaitable);
    auto h = modbus::decode_mbap(header);
    if (!h) co_return;
    std::vector<std::uint8_t> pdu(h->pdu_size());
    co_await asio::async_read(c->socket, asio::buffer(pdu), asio::use_awaitable);
    asio::co_spawn(c->socket.get_executor(), answer_later(c, f, *h, std::move(pdu)), asio::detached);
  }
}

/// Bytes of the RTU frames answered since the last stats line (requests, answers), for a bench's
/// line-time sums; only a serial line counts them.
std::uint64_t request_bytes = 0, answer_bytes = 0;

/// RTU framing on a byte stream (a serial line, or TCP to a serial device server): frames are cut
/// by their function code's size; a bad CRC or an unknown function drops what has arrived, as a
/// device waits for silence before listening again. With `pace` on, an answer is written when its
/// last byte would arrive on a real line: the request's own line time, the silence that ends it, the
/// device's turnaround and the answer's own line time after the request's first byte came in.
template <typename Stream>
awaitable<void> serve_rtu(Stream& stream, sim::fleet& f, sim::line_pace pace = {}) {
  std::vector<std::uint8_t> pending;
  std::array<std::uint8_t, 512> buf{};
  asio::steady_timer paced(co_await asio::this_coro::executor);
  auto frame_start = sim::steady::now();
  for (;;) {
    const auto n = co_await stream.async_read_some(asio::buffer(buf), asio::use_awaitable);
    // The master wrote its request at once (a pty), so the first byte's arrival is when the request
    // started on the line (a request split over two reads started with the first).
    if (pending.empty()) frame_start = sim::steady::now();
    pending.insert(pending.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    for (;;) {
      auto size = modbus::rtu_request_size(pending);
      if (!size) {
        pending.clear();
        break;
      }
      if (!*size || pending.size() < **size) break;
      std::vector<std::uint8_t> frame(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(**size));
      pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(**size));
      auto decoded = modbus::decode_rtu_adu(frame);
      if (!decoded) {
        pending.clear();
        break;
      }
      const auto request_end = frame_start + pace.of(frame.size());
      frame_start = request_end;  // a second frame in the same read started when this one ended
      if (decoded->unit == 0) {
        // A broadcast: every device acts on it and none answers (Serial Line §2.2).
        log_line(fmt::format("broadcast function={}", decoded->pdu.empty() ? 0 : decoded->pdu[0]));
        f.broadcast(decoded->pdu, sim::steady::now());
        continue;
      }
      auto reply = f.answer(decoded->unit, decoded->pdu, sim::steady::now());
      if (!reply) continue;
      ++answered;
      auto adu = modbus::encode_rtu_adu(decoded->unit, *reply);
      if (f.corrupt(decoded->unit)) adu.back() ^= 0xFF;
      if (f.junk(decoded->unit)) adu.insert(adu.end(), stray_bytes.begin(), stray_bytes.end());
      if (pace.on()) {
        request_bytes += frame.size();
        answer_bytes += adu.size();
        const auto* d = f.find(decoded->unit);
        paced.expires_at(request_end + pace.silence + pace.turnaround + (d ? d->delay : 0ms) +
                         pace.of(adu.size()));
        co_await paced.async_wait(asio::use_awaitable);
      } else {
        co_await answer_delay(f, decoded->unit);
      }
      co_await asio::async_write(stream, asio::buffer(adu), asio::use_awaitable);
    }
  }
}

awaitable<void> serve_connection(tcp::socket socket, sim::fleet& f, bool rtu, bool concurrent) {
  try {
    if (rtu) {
      co_await serve_rtu(socket, f);
    } else if (concurrent) {
      co_await serve_mbap_concurrently(std::move(socket), f);
    } else {
      co_await serve_mbap(std::move(socket), f);
    }
  } catch (const boost::system::system_error&) {
    // The master went away.
  }
}

awaitable<void> listen(tcp::acceptor& acceptor, sim::fleet& f, bool rtu, bool concurrent) {
  for (;;) {
    auto socket = co_await acceptor.async_accept(asio::use_awaitable);
    socket.set_option(tcp::no_delay(true));
    asio::co_spawn(acceptor.get_executor(), serve_connection(std::move(socket), f, rtu, concurrent),
                   asio::detached);
  }
}

awaitable<void> serve_serial(asio::serial_port& port, sim::fleet& f, sim::line_pace pace) {
  try {
    co_await serve_rtu(port, f, pace);
  } catch (const boost::system::system_error& e) {
    log_line(fmt::format("serial line closed error=\"{}\"", e.what()));
  }
}

awaitable<void> run_script(std::vector<change> script, std::vector<sim::fleet>& fleets) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  const auto start = std::chrono::steady_clock::now();
  for (const auto& c : script) {
    timer.expires_at(start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                 std::chrono::duration<double>(c.at)));
    co_await timer.async_wait(asio::use_awaitable);
    apply_change(fleets, c);
  }
}

awaitable<void> stats(std::chrono::milliseconds every) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(every);
    co_await timer.async_wait(asio::use_awaitable);
    // On a paced serial line the frames' bytes too, so a bench can sum their line time.
    const auto bytes = request_bytes + answer_bytes == 0
                           ? std::string()
                           : fmt::format(" request_bytes={} answer_bytes={}", request_bytes, answer_bytes);
    log_line(fmt::format("stats requests={} per_s={:.1f}{}", answered,
                         static_cast<double>(answered) * 1000.0 / static_cast<double>(every.count()), bytes));
    answered = request_bytes = answer_bytes = 0;
  }
}

awaitable<void> tick(std::vector<sim::fleet>& fleets, std::chrono::milliseconds every) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(every);
    co_await timer.async_wait(asio::use_awaitable);
    for (auto& f : fleets) f.tick(sim::steady::now());
  }
}

awaitable<void> read_commands(asio::posix::stream_descriptor& in, std::vector<sim::fleet>& fleets) {
  asio::streambuf buf;
  for (;;) {
    boost::system::error_code ec;
    co_await asio::async_read_until(in, buf, '\n', asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;  // stdin closed: keep serving
    std::istream is(&buf);
    std::string line;
    std::getline(is, line);
    if (line.empty() || line[0] == '#') continue;
    change c;
    if (auto err = parse_change(line, false, c)) {
      log_line(fmt::format("command rejected line=\"{}\" error=\"{}\"", line, *err));
      continue;
    }
    apply_change(fleets, c);
  }
}

/// "SD-1:1-3", "EFD-4T:4", or a bare count N for SD-1 at units 1..N.
std::optional<std::string> add_devices(sim::fleet& f, const std::string& spec,
                                       const modbus::profile_library& profiles) {
  std::string name = "SD-1", range = spec;
  if (auto colon = spec.rfind(':'); colon != std::string::npos) {
    name = spec.substr(0, colon);
    range = spec.substr(colon + 1);
  } else {
    range = "1-" + spec;
  }
  auto profile = profiles.find(name);
  if (profile == profiles.end()) {
    std::string known;
    for (const auto& [n, p] : profiles) known += (known.empty() ? "" : ", ") + n;
    return fmt::format("--devices {}: no profile \"{}\"; known: {}", spec, name, known);
  }
  long first = 0, last = 0;
  const auto dash = range.find('-');
  try {
    first = std::stol(range.substr(0, dash));
    last = dash == std::string::npos ? first : std::stol(range.substr(dash + 1));
  } catch (const std::exception&) {
    return fmt::format("--devices {}: give units as FIRST or FIRST-LAST", spec);
  }
  if (first < 1 || last > 247 || first > last) return fmt::format("--devices {}: units are 1-247", spec);
  for (long u = first; u <= last; ++u) {
    if (auto err = f.add(static_cast<std::uint8_t>(u), profile->second))
      return fmt::format("--devices {}: {}", spec, *err);
  }
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"firegate-sim: simulated fire-protection field devices (Modbus TCP and RTU, MQTT sensors)"};
  std::string bind = "127.0.0.1", framing = "mbap", serial, profiles_dir = modbus::default_profiles_dir();
  std::uint16_t port = 1502;
  std::size_t ports = 1;
  std::uint32_t baud = 9600;
  std::vector<std::string> device_specs{"SD-1:1-3"};
  std::string script_path, port_file;
  bool commands = false, concurrent = false;
  std::uint64_t seed = 1;
  unsigned tick_ms = 200, stats_ms = 0;
  // A detector's microcontroller takes a few milliseconds from the end of a request to the first
  // byte of its answer; SD-1-class devices document 2-10 ms.
  unsigned turnaround_ms = 5;
  cli.add_option("--profiles", profiles_dir, "profiles folder (with modbus/*.toml and mqtt/*.toml)")
      ->capture_default_str();
  cli.add_option("--devices", device_specs,
                 "PROFILE:FIRST-LAST units on every port, repeatable (a bare N is SD-1:1-N)")
      ->capture_default_str();
  auto* port_option = cli.add_option("--port", port, "first TCP port (0: any free ports; see --port-file)")
                          ->capture_default_str();
  cli.add_option("--ports", ports, "TCP listeners, each with its own copy of the devices")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cli.add_option("--bind", bind, "address to listen on")->capture_default_str();
  cli.add_option("--framing", framing, "TCP framing: mbap (Modbus TCP) or rtu (RTU over TCP, serial servers)")
      ->check(CLI::IsMember({"mbap", "rtu"}))
      ->capture_default_str();
  cli.add_option("--serial", serial, "serve Modbus RTU on this serial device (a pty end in tests)");
  cli.add_option("--baud", baud, "serial baud rate: answers are paced as a line at this rate carries them")
      ->capture_default_str()
      ->check(CLI::Range(300, 921600));
  cli.add_option("--turnaround-ms", turnaround_ms,
                 "--serial: each device starts answering this long after the silence that ends a request")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  cli.add_option("--script", script_path, "timed changes, one per line: AT_SECONDS [PORT:]UNIT FIELD VALUE");
  cli.add_option("--port-file", port_file, "write the listening ports, one a line, to this file once ready");
  cli.add_flag("--commands", commands, "read [PORT:]UNIT FIELD VALUE changes from standard input");
  cli.add_flag("--concurrent", concurrent,
               "Modbus TCP: answer several requests on one connection at once, as a gateway that allows "
               "pipelining does (each answer after its device's delay_ms)");
  cli.add_option("--seed", seed, "random seed for drift and corruption")->capture_default_str();
  cli.add_option("--tick-ms", tick_ms, "how often values wander and device logic runs")
      ->capture_default_str()
      ->check(CLI::Range(10, 10000));
  cli.add_option("--stats-ms", stats_ms, "log the requests answered this often (0: never)")
      ->capture_default_str();
  sim::mqtt_options mq;
  cli.add_option("--mqtt", mq.broker,
                 "publish as wireless sensors to this broker (HOST:PORT) instead of serving Modbus");
  cli.add_option("--mqtt-device", mq.devices,
                 "PROFILE:ID or PROFILE:PREFIX*N of an MQTT profile, repeatable");
  cli.add_option("--interval-ms", mq.interval_ms,
                 "--mqtt: each sensor publishes its state this often (0: on commands)")
      ->capture_default_str();
  cli.add_option("--rate", mq.rate,
                 "--mqtt: messages a second across all sensors, round robin (a benchmark)");
  cli.add_option("--seconds", mq.seconds, "--mqtt with --rate: stop after this long");
  cli.add_option("--qos", mq.qos, "--mqtt: QoS of the messages")
      ->check(CLI::Range(0, 1))
      ->capture_default_str();
  CLI11_PARSE(cli, argc, argv);
  if (!mq.broker.empty()) {
    mq.profiles_dir = profiles_dir;
    mq.commands = commands;
    return sim::run_mqtt(mq);
  }

  config::config_errors errors;
  const auto profiles = modbus::load_profiles(std::filesystem::path(profiles_dir) / "modbus", errors);
  if (!errors.empty()) {
    std::cerr << errors.format("firegate-sim profiles");
    return 1;
  }
  std::vector<change> script;
  if (!script_path.empty()) {
    std::ifstream in(script_path);
    if (!in) {
      std::cerr << script_path << ": cannot read the script file\n";
      return 1;
    }
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      if (line.empty() || line[0] == '#') continue;
      change c;
      if (auto err = parse_change(line, true, c)) {
        std::cerr << script_path << ":" << n << ": " << *err << "\n";
        return 1;
      }
      script.push_back(c);
    }
  }

  std::vector<sim::fleet> fleets;
  for (std::size_t i = 0; i < ports; ++i) {
    fleets.emplace_back(seed + i);
    for (const auto& spec : device_specs) {
      if (auto err = add_devices(fleets.back(), spec, profiles)) {
        std::cerr << "firegate-sim: " << *err << "\n";
        return 1;
      }
    }
    fleets.back().on_command = [i](std::uint8_t unit, std::string_view command) {
      log_line(fmt::format("command {}unit={} {}", i == 0 ? std::string() : fmt::format("port={} ", i), unit,
                           command));
    };
  }

  try {
    asio::io_context io(1);
    std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
    const bool tcp_wanted = serial.empty() || port_option->count() > 0;
    std::string listening;
    if (tcp_wanted) {
      for (std::size_t i = 0; i < ports; ++i) {
        const auto want = port == 0 ? std::uint16_t{0} : static_cast<std::uint16_t>(port + i);
        auto a = std::make_unique<tcp::acceptor>(io, tcp::endpoint{asio::ip::make_address(bind), want});
        listening += fmt::format("{}\n", a->local_endpoint().port());
        asio::co_spawn(io, listen(*a, fleets[i], framing == "rtu", concurrent), asio::detached);
        acceptors.push_back(std::move(a));
      }
    }
    std::unique_ptr<asio::serial_port> line;
    if (!serial.empty()) {
      line = std::make_unique<asio::serial_port>(io, serial);
      line->set_option(asio::serial_port_base::baud_rate(baud));
      line->set_option(asio::serial_port_base::character_size(8));
      line->set_option(asio::serial_port_base::parity(asio::serial_port_base::parity::none));
      line->set_option(asio::serial_port_base::stop_bits(asio::serial_port_base::stop_bits::one));
      const sim::line_pace pace{modbus::rtu_char_time(baud), modbus::rtu_frame_silence(baud),
                                std::chrono::milliseconds(turnaround_ms)};
      asio::co_spawn(io, serve_serial(*line, fleets[0], pace), asio::detached);
    }
    if (!port_file.empty()) {
      const auto tmp = port_file + ".tmp";
      std::ofstream(tmp) << (listening.empty() ? std::string("0\n") : listening);
      std::rename(tmp.c_str(), port_file.c_str());
    }
    const auto first_port = listening.substr(0, listening.find('\n'));
    log_line(
        fmt::format("listening{} devices={} per_port=\"{}\"",
                    tcp_wanted
                        ? fmt::format(" addr={}:{} ports={} framing={}", bind, first_port, ports, framing)
                        : std::string(),
                    fleets[0].size() * fleets.size(), fleets[0].describe()) +
        (serial.empty() ? std::string()
                        : fmt::format(" serial={} baud={} turnaround_ms={}", serial, baud, turnaround_ms)));
    asio::co_spawn(io, tick(fleets, std::chrono::milliseconds(tick_ms)), asio::detached);
    if (stats_ms > 0) asio::co_spawn(io, stats(std::chrono::milliseconds(stats_ms)), asio::detached);
    if (!script.empty()) asio::co_spawn(io, run_script(std::move(script), fleets), asio::detached);
    asio::posix::stream_descriptor in(io, ::dup(STDIN_FILENO));
    if (commands) asio::co_spawn(io, read_commands(in, fleets), asio::detached);
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](auto, int) { io.stop(); });
    io.run();
  } catch (const std::exception& e) {
    std::cerr << "firegate-sim: " << e.what() << " (is the port free? is the serial device there?)\n";
    return 1;
  }
  return 0;
}
